"""galyleo: private, HTTPS, token-protected Jupyter sessions as Slurm batch jobs."""

__version__ = "0.9.0"
