"""Every command's options and help, declared once: `cli` builds argparse from them
(`command_line`) and `tasks.py` builds invoke tasks from them, so the two front ends
cannot drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    """One option: `--flag VALUE`, a boolean `--flag`, or `--flag`/`--no-flag`."""

    flag: str  # as typed, without dashes: "lock-timeout"
    help: str
    kind: type = bool  # bool for a switch; str, int or float for a value
    dest: str = ""  # the handler's name for it, when not the flag's
    metavar: str | None = None
    required: bool = False
    tristate: bool = False  # --flag / --no-flag / neither (None)
    default: Any = None
    positional: bool = False  # given without its flag: `db restore FILE`
    many: bool = False  # a list: `lint PATH...` (invoke: --paths A --paths B)

    @property
    def name(self) -> str:
        return self.dest or self.flag.replace("-", "_")

    @property
    def param(self) -> str:
        """The invoke parameter, which invoke turns back into the same flag."""
        return self.flag.replace("-", "_")


@dataclass(frozen=True)
class Command:
    """One verb: `chainops <verb>` and `inv <task>`."""

    verb: str  # chainops migrate, chainops db schema
    task: str  # migrate.apply, db.schema
    help: str
    options: tuple[Option, ...] = ()


COMMON = (
    Option("database-url", "overrides DATABASE_URL", str),
    Option("migrations-dir", "overrides CHAINOPS_MIGRATIONS_DIR", str),
    Option("env", "overrides CHAINOPS_ENV", str, dest="environment"),
    Option("schema", "schema of the ledger tables", str, dest="ledger_schema"),
)
JSON = Option("json", "print a JSON document")
FLEET = (
    Option("targets", "the targets file (default fleet.toml)", str, metavar="FILE"),
    Option("parallel", "targets at once (default 8)", int, metavar="N"),
    Option("per-server", "targets at once on one server (default 4)", int, metavar="N"),
    JSON,
    Option(
        "format",
        "text (default), json or junit",
        str,
        dest="output_format",
        metavar="FORMAT",
    ),
)

COMMANDS = (
    Command(
        "migrate",
        "migrate.apply",
        "Verify the chain, then apply pending migrations (the default: inv migrate).",
        (
            Option(
                "allow-out-of-order",
                "apply pending files numbered below an applied one",
            ),
            Option(
                "resume", "continue a non-transactional migration that stopped midway"
            ),
            Option(
                "lock-timeout",
                "seconds to wait for another run's lock (default 60)",
                float,
                metavar="SECONDS",
            ),
            Option(
                "accept-drift",
                "record out-of-band schema changes as a drift block, then apply",
            ),
            Option("dry-run", "list what would be applied and how; change nothing"),
            Option("sql", "with --dry-run, print the SQL"),
            Option(
                "backup",
                "pg_dump before applying (default: on in production only)",
                tristate=True,
            ),
        ),
    ),
    Command(
        "revert",
        "migrate.revert",
        "Undo the newest applied migrations with their down scripts (NNN-x.down.sql), "
        "each a new block.",
        (
            Option(
                "last", "how many to revert, newest first (default 1)", int, metavar="N"
            ),
            Option(
                "to",
                "revert every migration numbered above this one, e.g. 1003",
                int,
                metavar="NUMBER",
            ),
            Option("dry-run", "list what would be reverted; change nothing"),
            Option("yes", "confirm reverting on a production database"),
        ),
    ),
    Command(
        "status",
        "migrate.status",
        "Show one line per migration: applied, pending or failed, and the chain head.",
        (JSON, Option("check", "exit 1 when anything is pending (for CI)")),
    ),
    Command(
        "verify",
        "migrate.verify",
        "Check every applied file and the chain links without applying anything.",
        (
            JSON,
            Option("head", "print only the verified head hash (for deploy logs)"),
            Option(
                "files-only", "check the files against chain.lock, without a database"
            ),
            Option(
                "digest",
                "also prove the ledger still holds every digest in this file",
                str,
                metavar="FILE",
            ),
        ),
    ),
    Command(
        "digest",
        "migrate.digest",
        "Print a digest of the ledger (JSON) to keep outside the database.",
    ),
    Command(
        "baseline",
        "migrate.baseline",
        "Adopt an existing database: record blocks up to --through, running nothing.",
        (
            Option(
                "through",
                "the last migration already in place, e.g. 1003",
                int,
                metavar="NUMBER",
                required=True,
            ),
        ),
    ),
    Command(
        "create",
        "migrate.create",
        "Write the next migration file of a type (or a repeatable one) from the "
        "template, and lock it.",
        (
            Option(
                "name",
                "what it does, e.g. add-user-preferences (made lower case, dashes)",
                str,
                required=True,
            ),
            Option(
                "type",
                "schema, functions or seed-data: the folder it goes in",
                str,
                dest="kind",
                metavar="TYPE",
                required=True,
            ),
            Option("description", "one line for the file's header", str),
            Option(
                "repeatable",
                "write R-<name>.sql, applied again whenever its content changes",
            ),
        ),
    ),
    Command(
        "lint",
        "migrate.lint",
        "Lint migrations for statements that lock or break production "
        "(docs/lint.md); pending files by default.",
        (
            Option(
                "paths",
                "files or folders to lint instead of the pending migrations",
                str,
                metavar="PATH",
                positional=True,
                many=True,
                default=(),
            ),
            Option(
                "all",
                "lint every migration, not only the pending ones",
                dest="all_files",
            ),
            Option("offline", "do not connect to the database: static rules only"),
            JSON,
            Option(
                "format",
                "text (default), json, sarif or github",
                str,
                dest="output_format",
                metavar="FORMAT",
            ),
        ),
    ),
    Command(
        "lock",
        "migrate.lock",
        "Rewrite migrations/chain.lock from the files (after adding one by hand).",
    ),
    Command(
        "reset-dev",
        "db.reset-dev",
        "Wipe the development database to a clean slate; refused in production.",
        (
            Option("yes", "do not ask for confirmation (needed without a terminal)"),
            Option("migrate", "then apply every migration"),
        ),
    ),
    Command(
        "fleet migrate",
        "fleet.migrate",
        "Verify and migrate every database in fleet.toml in parallel, each on its "
        "own; a record of the run to resume.",
        (
            *FLEET,
            Option(
                "canary",
                "migrate this many targets first; stop if one fails",
                int,
                metavar="K",
            ),
            Option(
                "waves",
                "tags whose targets go first, wave by wave: canary,eu",
                str,
                metavar="TAGS",
            ),
            Option(
                "max-failures",
                "stop starting targets once more than this share of all failed (0.1)",
                float,
                metavar="RATIO",
            ),
            Option("dry-run", "list what each target would apply; change nothing"),
            Option("lint", "lint every file once first; an error starts no target"),
            Option(
                "resume",
                "re-run the targets that did not finish in RUN (or last)",
                str,
                metavar="RUN",
            ),
            Option(
                "backup",
                "pg_dump each target before applying (default: on in production)",
                tristate=True,
            ),
        ),
    ),
    Command(
        "fleet status",
        "fleet.status",
        "One row per database in fleet.toml: height, head, pending and problems.",
        FLEET,
    ),
    Command(
        "fleet verify",
        "fleet.verify",
        "Verify every database in fleet.toml, schema drift included; nothing applied.",
        FLEET,
    ),
    Command(
        "db start",
        "db.start",
        "Start the project-local embedded PostgreSQL (when DATABASE_URL is unset).",
    ),
    Command(
        "db stop",
        "db.stop",
        "Stop the embedded PostgreSQL; the next command starts it.",
    ),
    Command(
        "db url",
        "db.url",
        "Print a connection URL for the embedded PostgreSQL, for psql or the app.",
    ),
    Command(
        "db schema",
        "db.schema",
        "Write migrations/schema.sql (pg_dump --schema-only); migrate refreshes it.",
    ),
    Command(
        "db restore",
        "db.restore",
        "Restore a backup from .chainops/backups into the database; asks --yes in "
        "production.",
        (
            Option(
                "file",
                "the backup, e.g. .chainops/backups/app-…-before-1004.dump",
                str,
                metavar="FILE",
                required=True,
                positional=True,
            ),
            Option("yes", "confirm restoring over a production database"),
        ),
    ),
    Command(
        "dev",
        "dev",
        "Migrate, then run Procfile.dev with honcho (explorer, watcher, your app).",
        (
            Option(
                "procfile",
                "the processes to run, relative to the project root",
                str,
                default="Procfile.dev",
            ),
        ),
    ),
    Command(
        "watch",
        "watch",
        "Apply migration files as they are saved; warn about edited ones.",
    ),
    Command(
        "explorer",
        "explorer",
        "Serve the read-only ledger explorer on 127.0.0.1.",
        (
            Option(
                "port",
                "port on 127.0.0.1 (default: $PORT, else 8765; 0 picks a free one)",
                int,
            ),
        ),
    ),
)
BY_VERB = {command.verb: command for command in COMMANDS}


def options_of(command: Command) -> tuple[Option, ...]:
    return (*command.options, *COMMON)


FRONT_END = "CHAINOPS_FRONT_END"  # tells `inv dev`'s processes which one was used
_INV = re.compile(r"\binv ([a-z][\w.-]*[\w])")


def speak(text: str, front: str) -> str:
    """Name commands as the front end in use does: the library says `inv migrate.lock`,
    `chainops` users read `chainops lock`."""
    if front != "chainops":
        return text
    verbs = {command.task: command.verb for command in COMMANDS}
    verbs["migrate"] = "migrate"

    def to_chainops(match: re.Match[str]) -> str:
        verb = verbs.get(match.group(1))
        return match.group(0) if verb is None else f"chainops {verb}"

    return _INV.sub(to_chainops, text)
