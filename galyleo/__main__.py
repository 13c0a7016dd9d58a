"""`python -m galyleo` and the zipapp entry point (`zipapp_main`, set by build/build_pyz.py)."""

import sys

from galyleo.cli import main


def zipapp_main() -> int:
    """The pyz: mark this unpacked build in use, tidy old ones on its first start, then run."""
    from galyleo import shivcache

    shivcache.on_start(shivcache.__file__, shivcache.configured_keep)
    return main()


if __name__ == "__main__":
    sys.exit(main())
