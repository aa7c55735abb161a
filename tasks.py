"""invoke tasks: thin wrappers over the `chainops` command, so both behave the same.

`inv --list` shows every task; `inv --help TASK` shows its options.
"""

from __future__ import annotations

from invoke import Collection, Exit, task


def _chainops(*argv: str) -> None:
    """Run one chainops command in-process; a non-zero exit becomes invoke's Exit."""
    from chainops.cli import main

    code = main(list(argv))
    if code:
        raise Exit(code=code)


def _flags(**options: object) -> list[str]:
    argv: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value not in (None, False):
            argv += [flag, str(value)]
    return argv


@task(
    default=True,
    help={
        "allow_out_of_order": "apply pending files numbered below an applied one",
        "resume": "continue a non-transactional migration that stopped midway",
        "lock_timeout": "seconds to wait for another run's lock (default 60)",
        "dry_run": "list what would be applied and how; change nothing",
        "sql": "with --dry-run, print the SQL",
        "backup": "pg_dump before applying (default: on in production only)",
        "no_backup": "never back up, even in production",
        "database_url": "overrides DATABASE_URL",
    },
)
def apply(
    c,
    allow_out_of_order=False,
    resume=False,
    lock_timeout=None,
    dry_run=False,
    sql=False,
    backup=False,
    no_backup=False,
    database_url=None,
):
    """Verify the chain, then apply pending migrations (the default: inv migrate)."""
    _chainops(
        "migrate",
        *_flags(
            allow_out_of_order=allow_out_of_order,
            resume=resume,
            lock_timeout=lock_timeout,
            dry_run=dry_run,
            sql=sql,
            backup=backup,
            no_backup=no_backup,
            database_url=database_url,
        ),
    )


@task(
    help={
        "through": "the last migration already in place, e.g. 1003",
        "database_url": "overrides DATABASE_URL",
    }
)
def baseline(c, through, database_url=None):
    """Adopt an existing database: record blocks up to --through, running nothing."""
    _chainops("baseline", *_flags(through=through, database_url=database_url))


@task(
    help={
        "json": "print a JSON document",
        "check": "exit 1 when anything is pending (for CI)",
        "database_url": "overrides DATABASE_URL",
    }
)
def status(c, json=False, check=False, database_url=None):
    """Show one line per migration: applied, pending or failed, and the chain head."""
    _chainops("status", *_flags(json=json, check=check, database_url=database_url))


@task(help={"json": "print a JSON document", "database_url": "overrides DATABASE_URL"})
def verify(c, json=False, database_url=None):
    """Check every applied file and the chain links without applying anything."""
    _chainops("verify", *_flags(json=json, database_url=database_url))


@task(
    name="reset-dev",
    help={
        "yes": "do not ask for confirmation (needed without a terminal)",
        "migrate": "then apply every migration",
    },
)
def reset_dev(c, yes=False, migrate=False):
    """Wipe the development database to a clean slate; refused in production."""
    _chainops("reset-dev", *_flags(yes=yes, migrate=migrate))


@task(name="start")
def db_start(c):
    """Start the project-local embedded PostgreSQL (used when DATABASE_URL is unset)."""
    _chainops("db", "start")


@task(name="stop")
def db_stop(c):
    """Stop the embedded PostgreSQL; the next command starts it again."""
    _chainops("db", "stop")


@task(name="url")
def db_url(c):
    """Print a connection URL for the embedded PostgreSQL, for psql or the app."""
    _chainops("db", "url")


migrate = Collection("migrate", apply, status, verify, baseline)
db = Collection("db", reset_dev, db_start, db_stop, db_url)
ns = Collection(migrate, db)
