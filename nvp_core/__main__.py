import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C before the CLI's own handler is in place: still no traceback
    sys.exit(130)

sys.exit(main())
