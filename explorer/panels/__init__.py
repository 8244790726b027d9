"""The explorer's tabs, one module each.

Model, Encode & latents, Information loss and Manifold take the window's
:class:`explorer.hub.Hub` (session + render worker); Canvas and Training take
the session (and renderer) directly.
"""
