"""galyleo: private, HTTPS, token-protected Jupyter sessions as Slurm batch jobs."""

__version__ = "0.9.0"

# typing.TYPE_CHECKING without importing typing (and re, which it imports): about 5 ms of a
# warm `--version` or `help` of about 20-30 ms. mypy takes any name TYPE_CHECKING as true, so
# the annotation-only imports under `if TYPE_CHECKING:` are checked; at run time they are never
# made. Defined here, the package's root, that every module imports first: no layer reaches up.
TYPE_CHECKING = False
