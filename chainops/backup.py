"""Back up the database with pg_dump before migrations are applied.

The password reaches pg_dump through its environment, never its command line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from chainops.errors import ConfigError, DatabaseAccessError

BACKUP_DIR = Path(".chainops") / "backups"
_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")


def _major(pg_dump: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(pg_dump), "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = _VERSION.search(out)
    return int(match.group(1)) if match else None


def find_pg_dump(server_major: int) -> Path:
    """The system pg_dump if it is as new as the server, else the embedded wheel's."""
    candidates: list[Path] = []
    system = shutil.which("pg_dump")
    if system:
        candidates.append(Path(system))
    try:
        from chainops import server

        candidates.append(server.pg_bin("pg_dump"))
    except ConfigError:
        pass
    found = [(path, _major(path)) for path in candidates]
    for path, major in found:
        if major is not None and major >= server_major:
            return path
    have = ", ".join(f"{p} ({m or '?'})" for p, m in found) or "none"
    raise ConfigError(
        f"pg_dump {server_major} or newer is needed to back up this server "
        f"(found: {have}); install it, or pass --no-backup to migrate without a backup"
    )


def split_password(conninfo: str) -> tuple[str, str | None]:
    """The conninfo without its password, and the password."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(conninfo)
    password = params.pop("password", None)
    return make_conninfo("", **params), None if password is None else str(password)


def create(
    conninfo: str,
    project_root: Path,
    dbname: str,
    server_major: int,
    before: str,
    keep: int,
) -> Path:
    """Dump the database in custom format and keep only the newest `keep` backups."""
    pg_dump = find_pg_dump(server_major)
    folder = project_root / BACKUP_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    safe_db = re.sub(r"[^\w.-]", "_", dbname)
    path = folder / f"{safe_db}-{stamp}-before-{before}.dump"
    dsn, password = split_password(conninfo)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    result = subprocess.run(
        [str(pg_dump), "--format=custom", f"--file={path}", f"--dbname={dsn}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        path.unlink(missing_ok=True)
        reason = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
        if password:
            reason = reason.replace(password, "***")
        raise DatabaseAccessError(
            f"pg_dump could not back up {dbname}: {reason}; nothing was applied, "
            "fix the cause or pass --no-backup"
        )
    _prune(folder, safe_db, keep)
    return path


def _prune(folder: Path, safe_db: str, keep: int) -> None:
    backups = sorted(folder.glob(f"{safe_db}-*-before-*.dump"))
    for old in backups[:-keep]:
        old.unlink(missing_ok=True)


def restore_command(path: Path) -> str:
    """How to restore a backup into the database it came from."""
    return f'pg_restore --clean --if-exists --no-owner --dbname "$DATABASE_URL" {path}'
