"""``python -m mrusfusion``: the same as the ``mrusfusion`` command."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
