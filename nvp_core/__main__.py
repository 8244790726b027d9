import os
import sys

try:
    from .cli import run
except KeyboardInterrupt:  # Ctrl-C before the CLI's own handler is in place: still no traceback
    sys.stderr.write("nvp: interrupted\n")
    sys.stderr.flush()
    os._exit(130)  # no finalisation of half-imported modules (see nvp_core.cli.run)

run()
