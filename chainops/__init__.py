"""chainops: hash-chained, forward-only PostgreSQL migrations.

The public API lives in `chainops.api` and is re-exported here lazily, so that
importing the package stays cheap for the command line.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("target", "apply", "status", "verify", "create", "check")


def __getattr__(name: str) -> Any:
    if name in _API:
        from chainops import api

        return getattr(api, name)
    raise AttributeError(name)
