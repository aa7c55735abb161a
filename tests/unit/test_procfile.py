"""The one adapter to honcho's internals, pinned against the installed honcho."""

from __future__ import annotations

import io

from honcho.manager import Manager
from honcho.printer import Printer

from chainops.dev.procfile import process_groups


def test_process_groups_names_each_started_process_when_honcho_ran_them():
    manager = Manager(Printer(io.StringIO(), colour=False))
    manager.add_process("one", "true")
    manager.add_process("two", "true")

    manager.loop()
    groups = process_groups(manager)

    assert sorted(groups.values()) == ["one", "two"]
    assert all(isinstance(pid, int) and pid > 0 for pid in groups)
