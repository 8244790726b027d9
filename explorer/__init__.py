"""NVP Explorer: a PySide6 + pyqtgraph desktop application over ``nvp_core``.

``nvp_core`` never imports this package. State lives in :mod:`explorer.session`
(plain Python), heavy work runs on the one worker of :mod:`explorer.render`,
and :mod:`explorer.hub` connects the two for the panels.
"""
