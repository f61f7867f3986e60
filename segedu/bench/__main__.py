"""``python -m segedu.bench ...``: the same command line as ``python -m segedu bench ...``."""

import sys

from .cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
