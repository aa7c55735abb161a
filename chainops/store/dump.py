"""pg_dump and pg_restore: backups before migrations are applied, restoring one, and
`migrations/schema.sql`.

The password reaches pg_dump through its environment, never its command line.
schema.sql is pg_dump's schema-only output normalised for code review: it changes only
when the schema does, so a review shows each schema change beside its migration.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from chainops.config import describe_database, password_of, redact
from chainops.errors import ConfigError, DatabaseAccessError
from chainops.store import ledger
from chainops.store.connection import connect

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


def _candidates(program: str) -> list[tuple[Path, int | None]]:
    """The system's program and the embedded wheel's, with their major versions."""
    paths: list[Path] = []
    system = shutil.which(program)
    if system:
        paths.append(Path(system))
    try:
        from chainops.store import server

        paths.append(server.pg_bin(program))
    except ConfigError:
        pass
    return [(path, _major(path)) for path in paths]


def _found(candidates: list[tuple[Path, int | None]]) -> str:
    return ", ".join(f"{p} ({m or '?'})" for p, m in candidates) or "none"


def find_pg_dump(server_major: int) -> Path:
    """The system pg_dump if it is as new as the server, else the embedded wheel's."""
    found = _candidates("pg_dump")
    for path, major in found:
        if major is not None and major >= server_major:
            return path
    raise ConfigError(
        f"pg_dump {server_major} or newer is needed to back up this server "
        f"(found: {_found(found)}); install it, or pass --no-backup to migrate "
        "without a backup"
    )


def find_pg_restore(backup: Path, server_major: int) -> Path:
    """A pg_restore that reads the backup, the oldest of those as new as the server.

    An archive is readable only by a pg_restore at least as new as the pg_dump that
    wrote it; a newer pg_restore sends settings an older server rejects
    (`transaction_timeout` from 17 on), so the closest version wins.
    """
    found = _candidates("pg_restore")
    readable = [(p, m) for p, m in found if m is not None and _reads(p, backup)]
    if not readable:
        raise ConfigError(
            f"{backup} cannot be read by any pg_restore here (found: "
            f"{_found(found)}); check that it is a chainops backup, or install a "
            "pg_restore as new as the pg_dump that wrote it"
        )
    fitting = [(p, m) for p, m in readable if m is not None and m >= server_major]
    return min(fitting or readable, key=lambda pm: pm[1] or 0)[0]


def _reads(pg_restore: Path, backup: Path) -> bool:
    done = subprocess.run(
        [str(pg_restore), "--list", str(backup)], capture_output=True, check=False
    )
    return done.returncode == 0


def _pg_dump_env(conninfo: str) -> tuple[str, dict[str, str]]:
    """pg_dump's --dbname without the password, and an environment holding it."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(conninfo) if conninfo else {}
    password = params.pop("password", None)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def _reason(stderr: str, returncode: int, conninfo: str) -> str:
    lines = stderr.strip().splitlines() or [f"exit status {returncode}"]
    return redact(lines[-1].removeprefix("pg_dump: error: "), password_of(conninfo))


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
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    safe_db = re.sub(r"[^\w.-]", "_", dbname)
    path = folder / f"{safe_db}-{stamp}-before-{before}.dump"
    # A backup holds the data: readable by its owner only. pg_dump truncates the
    # file it is given and keeps its mode.
    path.touch(mode=0o600)
    dsn, env = _pg_dump_env(conninfo)
    result = subprocess.run(
        [str(pg_dump), "--format=custom", f"--file={path}", f"--dbname={dsn}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        path.unlink(missing_ok=True)
        reason = _reason(result.stderr, result.returncode, conninfo)
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
    return f"inv db.restore {shlex.quote(str(path))}"


def restore(conninfo: str, backup: Path, server_major: int, where: str) -> None:
    """Restore a custom-format backup over the database, in one transaction.

    `--clean --if-exists` drops and recreates what the backup holds; objects created
    after it was taken stay (verify reports them as drift).
    """
    pg_restore = find_pg_restore(backup, server_major)
    dsn, env = _pg_dump_env(conninfo)
    argv = [str(pg_restore), "--clean", "--if-exists", "--no-owner"]
    argv += ["--single-transaction", f"--dbname={dsn}", str(backup)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = _reason(done.stderr, done.returncode, conninfo)
        reason = reason.removeprefix("pg_restore: error: ")
        raise DatabaseAccessError(
            f"pg_restore could not restore {backup.name} into {where}: {reason}; "
            "nothing was restored (it runs in one transaction), fix the cause"
        )


HEADER = "-- The schema the migrations build; written by inv db.schema, do not edit.\n"
# Lines that differ between two dumps of one schema: versions, and the random key of
# pg_dump's \restrict guard (PostgreSQL 17.6, 18.0 and later).
_VOLATILE = re.compile(
    r"^(-- Dumped (from database|by pg_dump) version |\\(un)?restrict )"
)


def write_schema_file(conninfo: str, path: Path, ledger_schema: str) -> bool:
    """Dump the schema without owners, privileges or the ledger; True if it changed."""
    with connect(conninfo, "schema") as conn:
        major = conn.info.server_version // 10000
    dsn, env = _pg_dump_env(conninfo)
    argv = [str(find_pg_dump(major)), "--schema-only", "--no-owner", "--no-privileges"]
    argv += [f"--exclude-table={_pattern(ledger_schema, t)}" for t in ledger.TABLES]
    if dsn:
        argv.append(f"--dbname={dsn}")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = _reason(done.stderr, done.returncode, conninfo)
        raise DatabaseAccessError(
            f"pg_dump could not dump {describe_database(conninfo)}: {reason}; "
            "check that the database is reachable"
        )
    text = normalise(done.stdout)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return True


def normalise(dump: str) -> str:
    """Drop the lines that change between two dumps of the same schema."""
    kept = [line for line in dump.splitlines() if not _VOLATILE.match(line)]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n")
    return HEADER + text + "\n"


def _pattern(schema: str, table: str) -> str:
    """A pg_dump pattern that matches exactly this table, whatever its characters."""
    return ".".join('"' + name.replace('"', '""') + '"' for name in (schema, table))
