"""invoke tasks: built from chainops' own command declarations, so `inv` and
`chainops` take the same options with the same help and behave identically.

`inv --list` shows every task; `inv --help TASK` shows its options.
"""

from __future__ import annotations

import inspect

from invoke import Collection, Exit, Task, task

from chainops.commands import COMMANDS, Command, options_of


def _task(command: Command) -> Task:
    """An invoke task that runs `command` in-process through the chainops CLI."""
    options = options_of(command)
    params = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    helps: dict[str, str] = {}
    for option in options:
        # No default of a value's kind: invoke would then refuse a missing value
        # with its own message, where chainops says what to pass (exit 2).
        default = False if option.kind is bool else None
        params.append(_param(option.param, default))
        helps[option.param] = option.help
        if option.tristate:
            params.append(_param(f"no_{option.param}", False))
            helps[f"no_{option.param}"] = f"the opposite of --{option.flag}"

    def body(c: object, **given: object) -> None:
        from chainops.cli import run_command

        values = {}
        for option in options:
            value = given.get(option.param)
            if option.tristate:
                value = (
                    True
                    if value
                    else (False if given.get(f"no_{option.param}") else None)
                )
            values[option.name] = value
        code = run_command(command.verb, values)
        if code:
            raise Exit(code=code)

    body.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    body.__doc__ = command.help
    name = command.task.rpartition(".")[2]
    positional = [o.param for o in options if o.positional and not o.many]
    iterable = [option.param for option in options if option.many]
    return Task(
        body,
        name=name,
        help=helps,
        default=name == "apply",
        positional=positional,
        iterable=iterable,
    )


def _param(name: str, default: object) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)


TASKS = {command.task: _task(command) for command in COMMANDS}


def _collection(name: str) -> Collection:
    return Collection(
        name,
        *(t for key, t in TASKS.items() if key.startswith(f"{name}.")),
    )


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
    help={
        "quick": "3 measured runs per cell instead of 5, for iteration",
        "runs": "measured runs per cell (default 5), e.g. 21 for the no-op rows",
        "only": "comma-separated workloads, e.g. apply,noop (default: all)",
        "sizes": "N for apply, noop and status (default 100,1000)",
        "output": "also write the Markdown report to this file",
    }
)
def bench(c, quick=False, runs=None, only=None, sizes=None, output=None):
    """Benchmark chainops against its peers and psql; see docs/benchmarks.md."""
    import os
    import shlex
    import sys

    flags = _flags(quick=quick, runs=runs, only=only, sizes=sizes, output=output)
    with c.cd(os.path.dirname(os.path.abspath(__file__))):  # bench/ is not installed
        c.run(shlex.join([sys.executable, "-m", "bench", *flags]))


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
ns = Collection(
    TASKS["dev"],
    _collection("migrate"),
    _collection("db"),
    _collection("fleet"),
    bench,
    test,
)
