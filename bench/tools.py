"""How each tool is invoked: chainops, inv, the peers, psql and the Python floors.

Every command gets a minimal environment and runs from a folder holding no config file
of another tool; output goes to a log, never to a terminal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bench.peers import ROOT, Peer

VENV_BIN = Path(os.environ.get("CHAINOPS_BENCH_VENV", ROOT / ".venv")) / "bin"
PSQL_FLAGS = ("-X", "-q", "-v", "ON_ERROR_STOP=1")
# libpq's defaults try GSSAPI and then TLS before a plain connection, which costs
# psql about 60 ms per connection here; every tool connects the plain way (dbmate's
# pure-Go driver has no GSSAPI and refuses the gssencmode parameter).
PLAIN = "sslmode=disable&gssencmode=disable"

FLOOR_PSYCOPG = (
    "import os, psycopg; "
    "psycopg.connect(os.environ['DATABASE_URL']).execute('select 1')"
)
FLOOR_INVOKE = (
    "import os, invoke, psycopg; "
    "psycopg.connect(os.environ['DATABASE_URL']).execute('select 1')"
)


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)


def base_env(**extra: str) -> dict[str, str]:
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
    return {**keep, "NO_COLOR": "1", **extra}


def plain_url(url: str, params: str = PLAIN) -> str:
    return f"{url}{'&' if '?' in url else '?'}{params}"


def chainops(verb: str, url: str, migrations: Path, *extra: str) -> Command:
    """The installed console script, from the project root (its pyproject is read)."""
    env = base_env(DATABASE_URL=plain_url(url), CHAINOPS_MIGRATIONS_DIR=str(migrations))
    return Command((str(VENV_BIN / "chainops"), verb, *extra), ROOT, env)


def inv(task: str, url: str, migrations: Path) -> Command:
    """`inv TASK` from the project root, where invoke finds tasks.py."""
    env = base_env(DATABASE_URL=plain_url(url), CHAINOPS_MIGRATIONS_DIR=str(migrations))
    return Command((str(VENV_BIN / "inv"), task), ROOT, env)


def python_floor(url: str, code: str) -> Command:
    env = base_env(DATABASE_URL=plain_url(url))
    return Command((str(VENV_BIN / "python"), "-c", code), ROOT, env)


def dbmate(peer: Peer, command: str, url: str, migrations: Path) -> Command:
    argv = (
        *peer.command,
        "--no-dump-schema",
        "--url",
        plain_url(url, "sslmode=disable"),
        "-d",
        str(migrations),
        command,
    )
    return Command(argv, migrations, base_env())


def graphile(peer: Peer, command: str, url: str, folder: Path) -> Command:
    """`graphile-migrate COMMAND` from `folder`, which holds its .gmrc and migrations/.

    `status` validates its settings as the dev commands do and wants a shadow database
    URL; it never connects to it, so the name of one that does not exist is enough.
    """
    base, name = url.rsplit("/", 1)
    env = base_env(
        DATABASE_URL=plain_url(url, "sslmode=disable"),
        SHADOW_DATABASE_URL=plain_url(f"{base}/{name}_shadow", "sslmode=disable"),
    )
    return Command((*peer.command, command), folder, env)


def yoyo(peer: Peer, command: str, url: str, migrations: Path) -> Command:
    extra = ("--batch",) if command == "apply" else ()
    argv = (
        *peer.command,
        command,
        *extra,
        "--no-config-file",
        "--database",
        url,
        str(migrations),
    )
    # yoyo's postgresql:// driver is psycopg2, which reads libpq's variables too.
    return Command(
        argv, migrations, base_env(PGSSLMODE="disable", PGGSSENCMODE="disable")
    )


def psql_single(
    peer: Peer, url: str, script: Path, single_transaction: bool = False
) -> Command:
    """One psql over `script`: autocommit, or with `-1` as one transaction."""
    one = ("-1",) if single_transaction else ()
    return Command(
        (*peer.command, *PSQL_FLAGS, *one, "-d", plain_url(url), "-f", str(script)),
        script.parent,
        base_env(),
    )


def psql_per_file(peer: Peer, url: str, folder: Path) -> Command:
    """One psql process per file, in name order, stopping at the first failure."""
    loop = (
        'for f in "$1"/*.sql; do "$2" '
        + " ".join(PSQL_FLAGS)
        + ' -d "$3" -f "$f" || exit 1; done'
    )
    argv = ("/bin/sh", "-c", loop, "sh", str(folder), peer.command[0], plain_url(url))
    return Command(argv, folder, base_env())
