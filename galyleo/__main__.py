"""`python -m galyleo` and the zipapp entry point."""

import sys

from galyleo.cli import main

if __name__ == "__main__":
    sys.exit(main())
