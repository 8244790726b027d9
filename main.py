"""NVP Explorer: `python main.py [MODEL] [--device cpu|cuda|auto] [--images …] [--tab NAME] [--fresh] [--screenshot PNG]`.

Only `explorer.app` is imported here: it parses the arguments before importing Qt
or torch, so `--help` and argument errors answer at once.
"""
import os
import sys

from explorer.app import main

if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: PySide6 + pyqtgraph can abort while finalising Qt objects.
    os._exit(code)
