"""The `chainops` command line built from `commands`: argparse for `cli`, and the one
conversion of option text to values that both front ends pass through, so a bad
value is the same one-line error (exit 2) from either."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from chainops import __version__, errors
from chainops.commands import COMMANDS, Command, Option, options_of
from chainops.errors import ConfigError


def parse_values(command: Command, given: Mapping[str, Any]) -> dict[str, Any]:
    """Convert each option's text to its kind and refuse what is missing or bad.

    `given` is keyed by option name; a missing key or None means not given.
    """
    values: dict[str, Any] = {}
    for option in options_of(command):
        raw = given.get(option.name)
        if option.many:
            many = (
                raw if isinstance(raw, (list, tuple)) else () if raw is None else [raw]
            )
            values[option.name] = tuple(str(item) for item in many)
            continue
        if raw is None or (raw is False and not option.tristate):
            if option.required and option.positional:
                raise ConfigError(
                    f"{option.metavar} is missing ({option.help}); pass it after "
                    "the command"
                )
            if option.required:
                raise ConfigError(
                    f"--{option.flag} is missing ({option.help}); pass --{option.flag}"
                )
            switch = option.kind is bool and not option.tristate
            values[option.name] = False if switch else option.default
        elif option.kind is bool:
            values[option.name] = bool(raw)
        else:
            values[option.name] = _convert(option, raw)
    return values


def _convert(option: Option, raw: Any) -> Any:
    try:
        return option.kind(raw)
    except (TypeError, ValueError):
        kind = "a whole number" if option.kind is int else "a number"
        example = "60" if option.kind is float else "1003"
        raise ConfigError(
            f"--{option.flag} {raw!r} is not {kind}; pass for example "
            f"--{option.flag} {example}"
        ) from None


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The command line; with `verb`, only that command's part, which saves the
    milliseconds of building every other command's options on each run."""
    parser = argparse.ArgumentParser(
        prog="chainops",
        description="Hash-chained, forward-only PostgreSQL migrations.",
        epilog="Exit codes: "
        + ", ".join(f"{v} {k}" for k, v in errors.EXIT_CODES.items()),
    )
    parser.add_argument(
        "--version", action="version", version=f"chainops {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, list[Command]] = {}
    known = {command.verb.partition(" ")[0] for command in COMMANDS}
    wanted = verb if verb in known else None
    for command in COMMANDS:
        name, _, action = command.verb.partition(" ")
        if wanted is not None and name != wanted:
            continue
        if action:  # `db start`, `db restore FILE`: a sub-command with actions
            groups.setdefault(name, []).append(command)
            continue
        _add_options(sub.add_parser(name, help=command.help), options_of(command))
    for name, commands in groups.items():
        names = [command.verb.partition(" ")[2] for command in commands]
        group = sub.add_parser(name, help=f"{', '.join(names)}: see the README")
        actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
        for action, command in zip(names, commands, strict=True):
            parsed = actions.add_parser(action, help=command.help)
            _add_options(parsed, options_of(command))
    return parser


def _add_options(parser: argparse.ArgumentParser, options: tuple[Option, ...]) -> None:
    for option in options:
        flag = f"--{option.flag}"
        if option.positional:  # optional here: a missing one is chainops' error
            parser.add_argument(option.name, nargs="*" if option.many else "?",
                                metavar=option.metavar, help=option.help)  # fmt: skip
        elif option.tristate:
            parser.add_argument(
                flag, dest=option.name, action=argparse.BooleanOptionalAction,
                default=None, help=option.help,
            )  # fmt: skip
        elif option.kind is bool:
            parser.add_argument(flag, dest=option.name, action="store_true",
                                help=option.help)  # fmt: skip
        else:
            parser.add_argument(flag, dest=option.name, metavar=option.metavar,
                                help=option.help)  # fmt: skip
