"""Describe the machine and the tools, so recorded figures say where they came from."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from bench.database import Server
from bench.peers import Peer


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / (1 << 20):.0f} GiB"
    except OSError:
        pass
    return "? GiB"


def describe(server: Server, peers: dict[str, Peer]) -> list[str]:
    tools = ", ".join(
        f"{p.name} {p.version}" if not p.missing else f"{p.name} MISSING ({p.missing})"
        for p in peers.values()
    )
    return [
        f"- Machine: {os.cpu_count()} cores ({_cpu()}), {_memory_gib()} RAM, "
        f"{platform.system()} {platform.release()}",
        f"- Server: {server.describe()}, shared with other users of the machine",
        f"- Python {platform.python_version()} ({sys.executable})",
        f"- Peers: {tools}",
    ]
