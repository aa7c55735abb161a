"""The `chainops` command: argparse over `chainops.api`, and the only exit point;
`tasks.py` calls `main` too, so `inv` and `chainops` behave identically."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from chainops import errors
from chainops.command_line import build_parser, parse_values
from chainops.commands import BY_VERB, COMMANDS, FRONT_END, speak
from chainops.config import Settings, load_settings, password_of, redact
from chainops.output import write_line

if TYPE_CHECKING:
    from chainops.events import Event
    from chainops.model import Target

_terminated = False
_front = "inv"  # which front end runs: messages name its commands


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Raised as KeyboardInterrupt so psycopg cancels the running statement the same way.
    global _terminated
    _terminated = True
    raise KeyboardInterrupt


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        database_url=args.database_url,
        migrations_dir=args.migrations_dir,
        environment=args.environment,
        ledger_schema=args.ledger_schema,
        lock_timeout=getattr(args, "lock_timeout", None),
    )


def _target(
    args: argparse.Namespace, show: Callable[[Event], None] | None = None
) -> Target:
    """The database; an embedded start is told through `show`, else on stderr."""
    from chainops import api

    return api.target(_settings(args), on_event=show or _notice)


def _shower(colour: bool) -> Callable[[Event], None]:
    from chainops import report

    return lambda event: _out(report.event_line(event, colour))


def _out(line: str) -> None:
    _write(line, sys.stdout)


def _err(line: str) -> None:
    _write(line, sys.stderr)


def _write(line: str, stream: TextIO) -> None:
    # What is applied must never depend on whether anyone still reads the output.
    write_line(speak(line, _front), stream)


def cmd_migrate(args: argparse.Namespace) -> int:
    from chainops import api, report

    colour = report.use_colour(sys.stdout)
    show = _shower(colour)
    result = api.apply(
        _target(args, show),
        allow_out_of_order=args.allow_out_of_order,
        resume=args.resume,
        dry_run=args.dry_run,
        accept_drift=args.accept_drift,
        backup=args.backup,
        on_event=show,
    )
    if args.dry_run:
        for line in report.plan_lines(result, args.sql, colour):
            _out(line)
    else:
        _out(report.apply_summary(result))
    return errors.EXIT_OK


def cmd_baseline(args: argparse.Namespace) -> int:
    from chainops import api, report

    show = _shower(report.use_colour(sys.stdout))
    result = api.baseline(_target(args, show), args.through, on_event=show)
    _out(report.baseline_summary(result))
    return errors.EXIT_OK


def _ask(where: str) -> bool:
    answer = input(f"Drop every schema and the ledger in {where}? Type yes to reset: ")
    return answer.strip().lower() == "yes"


def cmd_reset_dev(args: argparse.Namespace) -> int:
    from chainops import api, report

    if not args.yes and not sys.stdin.isatty():
        raise errors.Refused(
            "inv db.reset-dev needs confirmation and there is no terminal to ask; "
            "pass --yes, nothing was dropped"
        )
    show = _shower(report.use_colour(sys.stdout))
    dropped, applied = api.reset_dev(
        _target(args, show),
        (lambda _where: True) if args.yes else _ask,
        migrate=args.migrate,
        on_event=show,
    )
    _out(f"✓ reset: dropped schemas {', '.join(dropped) or '(none)'}")
    if applied is not None:
        _out(report.apply_summary(applied))
    return errors.EXIT_OK


def _notice(event: Event) -> None:
    from chainops import report

    _err(report.event_line(event, report.use_colour(sys.stderr)))


def cmd_status(args: argparse.Namespace) -> int:
    from chainops import api, report

    result = api.status(_target(args))
    if args.json:
        _out(report.status_json(result))
    else:
        for line in report.status_lines(result, report.use_colour(sys.stdout)):
            _out(line)
    if result.findings:
        return errors.DriftError.exit_code
    if args.check and result.waiting:
        return errors.EXIT_PENDING
    return errors.EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from chainops import api, report

    if args.json and args.head:
        raise errors.ConfigError("--json and --head both choose the output; pass one")
    if args.files_only:
        result = api.verify_files(_settings(args))
    else:
        digests = Path(args.digest) if args.digest else None
        result = api.verify(_target(args), digests)
    if args.json:
        _out(report.verify_json(result))
    elif args.head and result.ok:
        _out(report.head_line(result))
    else:
        for line in report.verify_lines(result, report.use_colour(sys.stdout)):
            _out(line)
    return errors.EXIT_OK if result.ok else errors.DriftError.exit_code


def cmd_create(args: argparse.Namespace) -> int:
    from chainops import api, report

    created = api.create(
        _settings(args), args.name, args.kind, args.description, args.repeatable
    )
    _out(report.display_path(created.path, Path.cwd().resolve()))
    if created.lock_created:
        _err(
            f"{report.OK} wrote chain.lock, locking every migration file "
            f"({created.locked}); commit it with the migrations"
        )
    return errors.EXIT_OK


def cmd_lint(args: argparse.Namespace) -> int:
    from chainops.lint import report, verb

    found = verb.lint(_settings(args), args.paths, all_files=args.all_files,
                      offline=args.offline)  # fmt: skip
    for line in report.render(found, "json" if args.json else args.output_format):
        _out(line)
    return errors.LintFailed.exit_code if found.errors else errors.EXIT_OK


def cmd_lock(args: argparse.Namespace) -> int:
    from chainops import api, report

    result = api.lock(_settings(args))
    for line in report.lock_lines(result, report.use_colour(sys.stdout)):
        _out(line)
    return errors.EXIT_OK


def cmd_dev(args: argparse.Namespace) -> int:
    from chainops import api, report
    from chainops.dev import procfile

    settings = _settings(args)
    processes = procfile.read_procfile(settings, args.procfile)
    show = _shower(report.use_colour(sys.stdout))
    database = api.target(settings, on_event=show)
    try:
        _out(report.apply_summary(api.apply(database, on_event=show)))
    except (errors.MigrationFileError, errors.MigrationFailed, errors.OutOfOrder) as e:
        # A pending file's own problem: the watcher takes it up once it is saved.
        for line in report.error_lines(e, report.use_colour(sys.stderr)):
            _err(redact(line, _secrets()))
        _out("○ starting anyway; fix the file and save it to apply it")
    env = procfile.environment(settings, database.conninfo, os.environ)
    env[FRONT_END] = _front
    return procfile.run(processes, env, settings.project_root)


def _stopped() -> int:
    return errors.EXIT_TERMINATED if _terminated else errors.EXIT_INTERRUPTED


def cmd_watch(args: argparse.Namespace) -> int:
    from chainops.dev import watch

    try:
        with watch.Watcher(_settings(args), _out) as watcher:
            watcher.run()
    except KeyboardInterrupt:
        _out("○ stopped watching")
        return _stopped()
    return errors.EXIT_OK


def cmd_explorer(args: argparse.Namespace) -> int:
    from chainops.dev.procfile import UNDER_DEV
    from chainops.web import explorer

    def ready(url: str) -> None:
        taken = port and not url.endswith(f":{port}/")
        _out(
            f"✓ ledger explorer on {url} (read-only)"
            + (f"; port {port} was taken" if taken else "")
        )

    try:
        given = os.environ.get("PORT") if args.port is None else str(args.port)
        port = explorer.parse_port(given)
        explorer.serve(_settings(args), port, ready)
    except KeyboardInterrupt:
        return _stopped()
    except errors.ChainopsError as err:
        if not os.environ.get(UNDER_DEV):
            raise
        # Under inv dev the explorer is optional: honcho stops every process when
        # one ends, so a failed explorer stays, idle, and the watcher keeps going.
        _err(f"✗ {err}")
        _out("○ the explorer is off; the other processes keep running")
        return _idle()
    return errors.EXIT_OK


def _idle() -> int:
    """Wait for Ctrl-C or SIGTERM."""
    with suppress(KeyboardInterrupt):
        while True:
            signal.pause()
    return _stopped()


def cmd_db(args: argparse.Namespace) -> int:
    from chainops import api, db_verbs, report

    settings = _settings(args)
    if args.action == "url":
        _out(db_verbs.db_url(settings))
    elif args.action == "schema":
        path = settings.migrations_dir / api.SCHEMA_FILE
        changed = api.db_schema(_target(args))
        _out(f"✓ {'wrote' if changed else 'unchanged:'} {path}")
    elif args.action == "restore":
        backup = Path(args.file)
        if not backup.is_absolute() and not backup.exists():
            backup = settings.project_root / backup  # as the backup line prints it
        show = _shower(report.use_colour(sys.stdout))
        database = _target(args, show)
        db_verbs.db_restore(database, backup, confirmed=args.yes, on_event=show)
        _out(f"✓ restored {args.file} into {database.description}")
    elif args.action == "start":
        database = db_verbs.db_start(settings, on_event=_notice)
        _out(
            f"✓ embedded PostgreSQL running: {database.description}; inv db.url "
            "prints how to connect"
        )
    elif db_verbs.db_stop(settings):
        _out("✓ embedded PostgreSQL stopped")
    else:
        _out("○ embedded PostgreSQL was not running")
    return errors.EXIT_OK


def cmd_revert(args: argparse.Namespace) -> int:
    from chainops import revert_verb

    return revert_verb.front(args, lambda show: _target(args, show), _out)


def cmd_digest(args: argparse.Namespace) -> int:
    from chainops import api

    _out(api.digest_line(_target(args)))
    return errors.EXIT_OK


def cmd_fleet(args: argparse.Namespace) -> int:
    from chainops.fleet import front

    return front.run(args, _settings(args), _out)


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "digest": cmd_digest,
    "migrate": cmd_migrate,
    "revert": cmd_revert,
    "status": cmd_status,
    "verify": cmd_verify,
    "create": cmd_create,
    "lock": cmd_lock,
    "lint": cmd_lint,
    "dev": cmd_dev,
    "watch": cmd_watch,
    **{c.verb: cmd_fleet for c in COMMANDS if c.verb.startswith("fleet ")},
    "explorer": cmd_explorer,
    **{c.verb: cmd_db for c in COMMANDS if c.verb.startswith("db ")},
    "baseline": cmd_baseline,
    "reset-dev": cmd_reset_dev,
}


def _secrets() -> tuple[str, ...]:
    return password_of(os.environ.get("DATABASE_URL"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line and return its exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    first = next((a for a in args if not a.startswith("-")), None)
    given = vars(build_parser(first).parse_args(args))
    verb = given.pop("command")
    if "action" in given:
        verb = f"{verb} {given.pop('action')}"
    return run_command(verb, given, front="chainops")


def run_command(verb: str, given: dict[str, object], front: str = "inv") -> int:
    """Run one command with its options by name; errors become one clean line. Both
    front ends end here: `main` with argparse's values, tasks.py with invoke's."""
    global _front
    # Under `inv dev` (or `chainops dev`) the processes speak as the loop's front end.
    _front = os.environ.get(FRONT_END) or front
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        values = parse_values(BY_VERB[verb], given)
        args = argparse.Namespace(**values, action=verb.partition(" ")[2])
        return HANDLERS[verb](args)
    except errors.ChainopsError as err:
        from chainops import report

        code = err.exit_code
        if _terminated and code == errors.EXIT_INTERRUPTED:
            code = errors.EXIT_TERMINATED
        for line in report.error_lines(err, report.use_colour(sys.stderr)):
            _err(redact(line, _secrets()))
        return code
    except KeyboardInterrupt:
        _err("✗ interrupted; nothing was left half-applied")
        return _stopped()
    except Exception as err:
        if os.environ.get("CHAINOPS_DEBUG"):
            raise
        text = redact(f"{type(err).__name__}: {err}".splitlines()[0], _secrets())
        _err(f"✗ unexpected error: {text}; set CHAINOPS_DEBUG=1 for the traceback")
        return errors.EXIT_UNEXPECTED
    finally:
        signal.signal(signal.SIGTERM, previous)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
