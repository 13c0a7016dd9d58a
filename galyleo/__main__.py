"""`python -m galyleo` and the zipapp entry point (`zipapp_main`, set by build/build_pyz.py)."""

import sys


def version_line() -> str:
    """`galyleo 0.9.0`, and in a pyz the build it runs (shiv's build id: a hash of the bundled
    files), so that a site and its users can tell two builds of one version apart."""
    from galyleo import __version__, shivcache

    build = shivcache.current_build(__file__)
    return f"galyleo {__version__}" + (f" (build {build.dirname[-12:]})" if build else "")


def main() -> int:
    """`--version` answers before the command line module (argparse, re) is even imported."""
    if sys.argv[1:] == ["--version"]:
        try:
            print(version_line(), flush=True)
        except BrokenPipeError:  # `galyleo --version | true`: quiet, like every other command
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        return 0
    from galyleo.cli import main as cli_main

    return cli_main()


def zipapp_main() -> int:
    """The pyz: the user's umask back (the fast start unpacks under 077), mark this unpacked
    build in use, tidy old ones on its first start, compile the HTTPS stack when first used,
    then run."""
    import os

    umask = os.environ.pop("GALYLEO_SHIV_UMASK", "")
    if umask.isdigit():
        os.umask(int(umask) & 0o777)
    from galyleo import shivcache, startup

    shivcache.on_start(shivcache.__file__, shivcache.configured_keep)
    startup.compile_https_first(shivcache.__file__)
    return main()


if __name__ == "__main__":
    sys.exit(main())
