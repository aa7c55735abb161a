"""The `chainops` command: argparse over `chainops.api`, and the only exit point.

`tasks.py` calls `main` too, so `inv` and `chainops` behave identically.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from chainops import errors
from chainops.config import Settings, load_settings, password_of, redact

_terminated = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Raised as KeyboardInterrupt so psycopg cancels the running statement the same way.
    global _terminated
    _terminated = True
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url", help="overrides DATABASE_URL")
    common.add_argument("--migrations-dir", help="overrides CHAINOPS_MIGRATIONS_DIR")
    common.add_argument("--env", dest="environment", help="overrides CHAINOPS_ENV")
    common.add_argument(
        "--schema", dest="ledger_schema", help="schema of the ledger tables"
    )

    parser = argparse.ArgumentParser(
        prog="chainops",
        description="Hash-chained, forward-only PostgreSQL migrations.",
        epilog="Exit codes: "
        + ", ".join(f"{v} {k}" for k, v in errors.EXIT_CODES.items()),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    migrate = sub.add_parser(
        "migrate", parents=[common], help="verify, then apply pending migrations"
    )
    migrate.add_argument(
        "--allow-out-of-order",
        action="store_true",
        help="apply pending files numbered below an applied one",
    )
    migrate.add_argument(
        "--resume",
        action="store_true",
        help="continue a non-transactional migration that stopped midway",
    )
    migrate.add_argument(
        "--lock-timeout",
        type=float,
        metavar="SECONDS",
        help="how long to wait for another run's lock (default 60)",
    )
    migrate.add_argument(
        "--accept-drift",
        action="store_true",
        help="record out-of-band schema changes as a drift block, then apply",
    )
    migrate.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be applied and how; change nothing",
    )
    migrate.add_argument(
        "--sql", action="store_true", help="with --dry-run, print the SQL"
    )
    migrate.add_argument(
        "--backup",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pg_dump before applying (default: on in production only)",
    )

    baseline = sub.add_parser(
        "baseline",
        parents=[common],
        help="adopt an existing database: record blocks without running them",
    )
    baseline.add_argument(
        "--through",
        type=int,
        required=True,
        metavar="NUMBER",
        help="the last migration already in place, e.g. 1003",
    )

    reset = sub.add_parser(
        "reset-dev",
        parents=[common],
        help="wipe a development database (refused in production)",
    )
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reset.add_argument(
        "--migrate", action="store_true", help="then apply every migration"
    )

    status = sub.add_parser("status", parents=[common], help="one line per migration")
    status.add_argument("--json", action="store_true", help="print a JSON document")
    status.add_argument(
        "--check", action="store_true", help="exit 1 when anything is pending (for CI)"
    )

    verify = sub.add_parser(
        "verify",
        parents=[common],
        help="check files and chain without applying anything",
    )
    output = verify.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print a JSON document")
    output.add_argument(
        "--head",
        action="store_true",
        help="print only the verified head hash (for deploy logs)",
    )
    verify.add_argument(
        "--files-only",
        action="store_true",
        help="check the files against chain.lock, without a database",
    )

    create = sub.add_parser(
        "create", parents=[common], help="write the next migration from the template"
    )
    create.add_argument(
        "--name", required=True, help="what it does, e.g. add-user-preferences"
    )
    create.add_argument(
        "--type",
        dest="kind",
        required=True,
        metavar="TYPE",
        help="schema, functions or seed-data: the folder it goes in",
    )
    create.add_argument("--description", help="one line for the file's header")

    sub.add_parser(
        "lock", parents=[common], help="rewrite chain.lock from the migration files"
    )

    dev = sub.add_parser(
        "dev",
        parents=[common],
        help="migrate, then run Procfile.dev with honcho until Ctrl-C",
    )
    dev.add_argument(
        "--procfile",
        default="Procfile.dev",
        help="the processes to run, relative to the project root",
    )
    sub.add_parser(
        "watch",
        parents=[common],
        help="apply new migration files as they are saved; warn about edited ones",
    )
    explorer = sub.add_parser(
        "explorer", parents=[common], help="serve the read-only ledger explorer"
    )
    explorer.add_argument(
        "--port",
        type=int,
        help="port on 127.0.0.1 (default: $PORT, else 8765; 0 picks a free one)",
    )

    database = sub.add_parser(
        "db",
        parents=[common],
        help="the embedded PostgreSQL (start, stop, url) and migrations/schema.sql",
    )
    database.add_argument("action", choices=["start", "stop", "url", "schema"])
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        database_url=args.database_url,
        migrations_dir=args.migrations_dir,
        environment=args.environment,
        ledger_schema=args.ledger_schema,
        lock_timeout=getattr(args, "lock_timeout", None),
    )


def _out(line: str) -> None:
    print(line, flush=True)


def cmd_migrate(args: argparse.Namespace) -> int:
    from chainops import api, report

    colour = report.use_colour(sys.stdout)
    result = api.apply(
        _settings(args),
        allow_out_of_order=args.allow_out_of_order,
        resume=args.resume,
        dry_run=args.dry_run,
        accept_drift=args.accept_drift,
        backup=args.backup,
        on_event=lambda event: _out(report.event_line(event, colour)),
    )
    if args.dry_run:
        for line in report.plan_lines(result, args.sql, colour):
            _out(line)
    else:
        _out(report.apply_summary(result))
    return errors.EXIT_OK


def cmd_baseline(args: argparse.Namespace) -> int:
    from chainops import api, report

    colour = report.use_colour(sys.stdout)
    result = api.baseline(
        _settings(args),
        args.through,
        on_event=lambda event: _out(report.event_line(event, colour)),
    )
    n = len(result.applied)
    _out(
        f"Baselined {n} migration{'s' if n != 1 else ''} without running them; "
        f"chain head {errors.short(result.head)} (block {result.height})"
    )
    return errors.EXIT_OK


def _ask(where: str) -> bool:
    answer = input(f"Drop every schema and the ledger in {where}? Type yes to reset: ")
    return answer.strip().lower() == "yes"


def cmd_reset_dev(args: argparse.Namespace) -> int:
    from chainops import api, report

    if not args.yes and not sys.stdin.isatty():
        raise errors.Refused(
            "db.reset-dev needs confirmation and there is no terminal to ask; "
            "pass --yes, nothing was dropped"
        )
    colour = report.use_colour(sys.stdout)
    dropped, applied = api.reset_dev(
        _settings(args),
        (lambda _where: True) if args.yes else _ask,
        migrate=args.migrate,
        on_event=lambda event: _out(report.event_line(event, colour)),
    )
    _out(f"✓ reset: dropped schemas {', '.join(dropped) or '(none)'}")
    if applied is not None:
        _out(report.apply_summary(applied))
    return errors.EXIT_OK


def _notice(event: object) -> None:
    from chainops import report

    print(report.event_line(event, report.use_colour(sys.stderr)), file=sys.stderr)  # type: ignore[arg-type]


def cmd_status(args: argparse.Namespace) -> int:
    from chainops import api, report

    result = api.status(_settings(args), on_event=_notice)
    if args.json:
        _out(report.status_json(result))
    else:
        for line in report.status_lines(result, report.use_colour(sys.stdout)):
            _out(line)
    if result.findings:
        return errors.DriftError.exit_code
    if args.check and result.count("applied") != len(result.entries):
        return errors.EXIT_PENDING
    return errors.EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from chainops import api, report

    result = api.verify(_settings(args), on_event=_notice, files_only=args.files_only)
    if args.json:
        _out(report.verify_json(result))
    elif args.head and result.ok:
        _out(report.head_line(result))
    else:
        for line in report.verify_lines(result, report.use_colour(sys.stdout)):
            _out(line)
    return errors.EXIT_OK if result.ok else errors.DriftError.exit_code


def cmd_create(args: argparse.Namespace) -> int:
    from pathlib import Path

    from chainops import api, report

    created = api.create(_settings(args), args.name, args.kind, args.description)
    _out(report.display_path(created.path, Path.cwd().resolve()))
    if created.lock_created:
        print(
            f"{report.OK} wrote chain.lock, locking every migration file "
            f"({created.locked}); commit it with the migrations",
            file=sys.stderr,
        )
    return errors.EXIT_OK


def cmd_lock(args: argparse.Namespace) -> int:
    from chainops import api, report

    result = api.lock(_settings(args))
    for line in report.lock_lines(result, report.use_colour(sys.stdout)):
        _out(line)
    return errors.EXIT_OK


def cmd_dev(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from chainops import api, dev, report

    settings = _settings(args)
    processes = dev.read_procfile(settings, args.procfile)
    colour = report.use_colour(sys.stdout)

    def show(event: api.Event) -> None:
        _out(report.event_line(event, colour))

    database = api.resolve_database(settings, on_event=show)
    if database.conninfo:
        settings = replace(settings, database_url=database.conninfo)
    try:
        _out(report.apply_summary(api.apply(settings, on_event=show)))
    except (
        errors.MigrationFileError,
        errors.MigrationFailed,
        errors.OutOfOrder,
    ) as err:
        # A pending file's own problem: the watcher takes it up once it is saved.
        for line in report.error_lines(err, report.use_colour(sys.stderr)):
            print(redact(line, _secrets()), file=sys.stderr)
        _out("○ starting anyway; fix the file and save it to apply it")
    env = dev.environment(settings, database.conninfo, os.environ)
    return dev.run(processes, env, settings.project_root)


def _stopped() -> int:
    return errors.EXIT_TERMINATED if _terminated else errors.EXIT_INTERRUPTED


def cmd_watch(args: argparse.Namespace) -> int:
    from chainops import watch

    try:
        with watch.Watcher(_settings(args), _out) as watcher:
            watcher.run()
    except KeyboardInterrupt:
        _out("○ stopped watching")
        return _stopped()
    return errors.EXIT_OK


def cmd_explorer(args: argparse.Namespace) -> int:
    from chainops import explorer

    port = args.port
    if port is None:
        port = explorer.parse_port(os.environ.get("PORT"))
    try:
        explorer.serve(
            _settings(args),
            port,
            lambda url: _out(f"✓ ledger explorer on {url} (read-only)"),
        )
    except KeyboardInterrupt:
        return _stopped()
    return errors.EXIT_OK


def cmd_db(args: argparse.Namespace) -> int:
    from chainops import api

    settings = _settings(args)
    if args.action == "url":
        _out(api.db_url(settings))
    elif args.action == "schema":
        path = settings.migrations_dir / api.SCHEMA_FILE
        changed = api.db_schema(settings)
        _out(f"✓ {'wrote' if changed else 'unchanged:'} {path}")
    elif args.action == "start":
        database = api.db_start(settings, on_event=_notice)
        _out(
            f"✓ embedded PostgreSQL running: {database.description}; inv db.url "
            "prints how to connect"
        )
    elif api.db_stop(settings):
        _out("✓ embedded PostgreSQL stopped")
    else:
        _out("○ embedded PostgreSQL was not running")
    return errors.EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "migrate": cmd_migrate,
    "status": cmd_status,
    "verify": cmd_verify,
    "create": cmd_create,
    "lock": cmd_lock,
    "dev": cmd_dev,
    "watch": cmd_watch,
    "explorer": cmd_explorer,
    "db": cmd_db,
    "baseline": cmd_baseline,
    "reset-dev": cmd_reset_dev,
}


def _secrets() -> tuple[str, ...]:
    return password_of(os.environ.get("DATABASE_URL"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code; errors become one clean line."""
    args = _parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return COMMANDS[args.command](args)
    except errors.ChainopsError as err:
        from chainops import report

        code = err.exit_code
        if _terminated and code == errors.EXIT_INTERRUPTED:
            code = errors.EXIT_TERMINATED
        for line in report.error_lines(err, report.use_colour(sys.stderr)):
            print(redact(line, _secrets()), file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("✗ interrupted; nothing was left half-applied", file=sys.stderr)
        return errors.EXIT_TERMINATED if _terminated else errors.EXIT_INTERRUPTED
    except Exception as err:
        if os.environ.get("CHAINOPS_DEBUG"):
            raise
        text = redact(f"{type(err).__name__}: {err}".splitlines()[0], _secrets())
        print(
            f"✗ unexpected error: {text}; set CHAINOPS_DEBUG=1 for the traceback",
            file=sys.stderr,
        )
        return errors.EXIT_UNEXPECTED
    finally:
        signal.signal(signal.SIGTERM, previous)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
