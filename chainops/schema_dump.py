"""`migrations/schema.sql`: pg_dump's schema-only output, normalised for code review.

The file changes only when the schema does, so a review shows each schema change beside
the migration that made it. The password reaches pg_dump through its environment only.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from chainops import db, ledger
from chainops.backup import find_pg_dump
from chainops.config import describe_database, password_of, redact
from chainops.errors import DatabaseAccessError

HEADER = "-- The schema the migrations build; written by inv db.schema, do not edit.\n"
# Lines that differ between two dumps of one schema: versions, and the random key of
# pg_dump's \restrict guard (PostgreSQL 17.6, 18.0 and later).
_VOLATILE = re.compile(
    r"^(-- Dumped (from database|by pg_dump) version |\\(un)?restrict )"
)


def write_schema_file(conninfo: str, path: Path, ledger_schema: str) -> bool:
    """Dump the schema without owners, privileges or the ledger; True if it changed."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with db.connect(conninfo, "schema") as conn:
        major = conn.info.server_version // 10000
    params = conninfo_to_dict(conninfo) if conninfo else {}
    env = dict(os.environ)
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)
    argv = [str(find_pg_dump(major)), "--schema-only", "--no-owner", "--no-privileges"]
    tables = (ledger.TABLE, ledger.HISTORY, ledger.META)
    argv += [f"--exclude-table={_pattern(ledger_schema, t)}" for t in tables]
    if params:
        argv.append(f"--dbname={make_conninfo('', **params)}")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        reason = redact(
            lines[-1].removeprefix("pg_dump: error: "), password_of(conninfo)
        )
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
