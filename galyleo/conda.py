"""Conda's contracts with the job: where it looks for conda, and the conda-pack cache key."""

from __future__ import annotations

import re
from typing import Any, Dict

# Where the job looks for conda when nothing else names it (the order a user's shell would);
# a leading `~/` is the user's home, on the login node as in the job.
CONDA_PREFIXES = ("~/miniforge3", "~/miniconda3", "~/anaconda3", "~/mambaforge", "/opt/conda")
CONDA_PREFIX_SEPARATOR = ":"  # the job gets the list as one string: a bash array cannot be exported into a container
KEY_LENGTH = 32  # hex digits of the sha256 a conda-pack cache entry is named by
KEY = re.compile(f"[0-9a-f]{{{KEY_LENGTH}}}\\Z")


def cache_key(yml: bytes, platform: str) -> str:
    """The cache key of the env a yml builds on a platform (`uname -sm`): one env per
    yml content and platform, so another machine type never unpacks a foreign pack."""
    import hashlib  # 3 ms that rendering a job (which imports this module) does not need

    return hashlib.sha256(yml + platform.encode() + b"\n").hexdigest()[:KEY_LENGTH]


def values() -> Dict[str, Any]:
    """The conda contracts as the `GALYLEO_*` values conda.sh.j2 uses."""
    return {"GALYLEO_CONDA_PREFIXES": CONDA_PREFIX_SEPARATOR.join(CONDA_PREFIXES),
            "GALYLEO_CONDA_KEY_LENGTH": KEY_LENGTH}


