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
        "accept_drift": "record out-of-band schema changes as a block, then apply",
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
    accept_drift=False,
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
            accept_drift=accept_drift,
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


@task(
    help={
        "json": "print a JSON document",
        "files_only": "check the files against chain.lock, without a database",
        "head": "print only the verified head hash (for deploy logs)",
        "database_url": "overrides DATABASE_URL",
    }
)
def verify(c, json=False, files_only=False, head=False, database_url=None):
    """Check every applied file and the chain links without applying anything."""
    _chainops(
        "verify",
        *_flags(json=json, files_only=files_only, head=head, database_url=database_url),
    )


@task(
    help={
        "name": "what it does, e.g. add-user-preferences (made lower case, dashes)",
        "type": "schema, functions or seed-data: the folder it goes in",
        "description": "one line for the file's header",
    }
)
def create(c, name, type, description=None):
    """Write the next migration file of a type from the template, and lock it."""
    _chainops("create", *_flags(name=name, type=type, description=description))


@task
def lock(c):
    """Rewrite migrations/chain.lock from the files (after adding one by hand)."""
    _chainops("lock")


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


@task(
    help={
        "procfile": "the processes to run, relative to the project root "
        "(default Procfile.dev)",
        "database_url": "overrides DATABASE_URL",
    }
)
def dev(c, procfile="Procfile.dev", database_url=None):
    """Migrate, then run Procfile.dev with honcho (explorer, watcher, your app)."""
    _chainops("dev", *_flags(procfile=procfile, database_url=database_url))


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


@task(
    help={
        "quick": "3 measured runs per cell instead of 5, for iteration",
        "runs": "measured runs per cell (default 5), e.g. 21 for the no-op rows",
        "only": "comma-separated workloads, e.g. apply,noop (default: all)",
        "sizes": "N for apply, noop and status (default 100,1000)",
        "output": "also write the Markdown report to this file",
    }
)
def bench(c, quick=False, runs=None, only=None, sizes=None, output=None):
    """Benchmark chainops against dbmate, yoyo and psql; see docs/benchmarks.md."""
    import os
    import shlex
    import sys

    flags = _flags(quick=quick, runs=runs, only=only, sizes=sizes, output=output)
    with c.cd(os.path.dirname(os.path.abspath(__file__))):  # bench/ is not installed
        c.run(shlex.join([sys.executable, "-m", "bench", *flags]))


migrate = Collection("migrate", apply, status, verify, baseline, create, lock)


@task(name="schema")
def db_schema(c):
    """Write migrations/schema.sql (pg_dump --schema-only); migrate refreshes it."""
    _chainops("db", "schema")


db = Collection("db", reset_dev, db_start, db_stop, db_url, db_schema)

STRESS = {"c1": 200, "c3": 50, "c4": 10, "k1": 100, "k3": 25, "k4": 50}
EXAMPLES = {"i1": 10_000, "i2": 5_000, "i3": 5_000, "s2": 2_000}


@task(
    help={
        **{k: f"{k.upper()} trials (default {v})" for k, v in STRESS.items()},
        **{k: f"{k.upper()} examples (default {v})" for k, v in EXAMPLES.items()},
        "seed": "replay the random seed printed by a failure",
    }
)
def stress(
    c,
    c1=None,
    c3=None,
    c4=None,
    k1=None,
    k3=None,
    k4=None,
    i1=None,
    i2=None,
    i3=None,
    s2=None,
    seed=None,
):
    """Run tests/reliability with the full trial counts; see docs/reliability.md."""
    import shlex
    import sys

    given = {"c1": c1, "c3": c3, "c4": c4, "k1": k1, "k3": k3, "k4": k4}
    given |= {"i1": i1, "i2": i2, "i3": i3, "s2": s2}
    env = {"CHAINOPS_STRESS_TRIALS": "full"}
    for name, default in {**STRESS, **EXAMPLES}.items():
        env[f"CHAINOPS_STRESS_{name.upper()}"] = str(given[name] or default)
    if seed:
        env["CHAINOPS_STRESS_SEED"] = str(seed)
    pytest = [sys.executable, "-m", "pytest", "tests/reliability", "-q", "-rA"]
    c.run(shlex.join([*pytest, "--durations=0"]), env=env)


test = Collection("test", stress)
ns = Collection(dev, migrate, db, bench, test)
