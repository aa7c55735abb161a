"""Read the files a digest check needs: the digest log and the key.

Kept apart from `digest`, which is pure; `digest` itself (base64, json, its records)
loads only when a log is read: the no-op, status and plain verify never import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from chainops.errors import ConfigError

if TYPE_CHECKING:
    from chainops.digest import Digest


def read_log(path: Path) -> list[Digest]:
    """The digests `chainops digest` appended to `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"the digest file {path} cannot be read ({err}); pass the file that "
            "chainops digest wrote"
        ) from err
    from chainops import digest

    return digest.parse_log(text, path.name)


def read_key(path: Path | None) -> bytes | None:
    """The signing or public key file, if one is configured."""
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(
            f"the digest key file {path} cannot be read ({err.strerror}); check "
            "CHAINOPS_DIGEST_KEY / CHAINOPS_DIGEST_PUBLIC_KEY"
        ) from err
