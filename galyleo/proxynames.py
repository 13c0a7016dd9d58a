"""The names the Satellite proxy gives: the alias pattern and the session URL.

Shared by the proxy's client (satellite.py: getlink must answer one alias), the
Satellite connection mode (connect/satellite.py) and, rendered, its job snippet
(satellite.sh.j2); docs/satellite-protocol.md describes the protocol.
"""

from __future__ import annotations

import re
from typing import Any, Dict

ALIAS_PATTERN = "[a-z0-9]+-[a-z0-9]+-[a-z0-9]+"  # an ERE, and a Python regex: both sides match it whole
ALIAS = re.compile(ALIAS_PATTERN + r"\Z")
PROXY_ORIGIN_FORMAT = "https://%s.%s"  # alias, domain: the origin the browser has
PROXY_URL_FORMAT = PROXY_ORIGIN_FORMAT + "/?token=%s"  # alias, domain, token: the session URL


def proxy_url(alias: str, domain: str, token: str) -> str:
    return PROXY_URL_FORMAT % (alias, domain, token)


def values() -> Dict[str, Any]:
    """What the Satellite connection (satellite.sh.j2) shares with Python."""
    return {
        "GALYLEO_ALIAS_PATTERN": ALIAS_PATTERN,
        "GALYLEO_PROXY_URL_FORMAT": PROXY_URL_FORMAT,
        "GALYLEO_PROXY_ORIGIN_FORMAT": PROXY_ORIGIN_FORMAT,
    }
