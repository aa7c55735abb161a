"""Install the peer tools for the benchmark, outside the project's own install.

Idempotent: dbmate and graphile-migrate from the npm registry, yoyo-migrations in its
own virtual environment, all under .chainops/bench-peers/ (git-ignored).
`python -m bench.peers`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = ROOT / ".chainops" / "bench-peers"
DBMATE_PACKAGE = "@dbmate/linux-x64"
GRAPHILE_PACKAGE = "graphile-migrate@~1.4"  # 1.4.x, the line issue 20 compares with
YOYO_PACKAGES = ("yoyo-migrations", "psycopg2-binary")  # yoyo's postgresql:// driver


@dataclass(frozen=True)
class Peer:
    """An installed tool, or why it is missing."""

    name: str
    command: tuple[str, ...]
    version: str = ""
    missing: str = ""  # non-empty: the reason the peer could not be installed


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def setup_dbmate(base: Path = PEERS_DIR) -> Peer:
    binary = (
        base / "dbmate" / "node_modules" / "@dbmate" / "linux-x64" / "bin" / "dbmate"
    )
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            return Peer("dbmate", (), missing="npm is not installed")
        done = _run([npm, "install", "--prefix", str(base / "dbmate"), DBMATE_PACKAGE])
        if done.returncode or not binary.exists():
            return Peer(
                "dbmate", (), missing=f"npm install failed: {_last_line(done.stderr)}"
            )
    version = _run([str(binary), "--version"])
    if version.returncode:
        return Peer(
            "dbmate", (), missing=f"dbmate does not run: {_last_line(version.stderr)}"
        )
    return Peer("dbmate", (str(binary),), version.stdout.strip().rsplit(" ", 1)[-1])


def setup_graphile(base: Path = PEERS_DIR) -> Peer:
    """graphile-migrate's CLI, run with node itself rather than by its shebang."""
    folder = base / "graphile-migrate"
    cli = folder / "node_modules" / "graphile-migrate" / "dist" / "cli.js"
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        return Peer("graphile-migrate", (), missing="node is not installed")
    if not cli.exists():
        if npm is None:
            return Peer("graphile-migrate", (), missing="npm is not installed")
        done = _run([npm, "install", "--prefix", str(folder), GRAPHILE_PACKAGE])
        if done.returncode or not cli.exists():
            return Peer(
                "graphile-migrate",
                (),
                missing=f"npm install failed: {_last_line(done.stderr)}",
            )
    version = _run([node, str(cli), "--version"])
    if version.returncode:
        return Peer(
            "graphile-migrate",
            (),
            missing=f"graphile-migrate does not run: {_last_line(version.stderr)}",
        )
    return Peer("graphile-migrate", (node, str(cli)), version.stdout.strip())


def setup_yoyo(base: Path = PEERS_DIR) -> Peer:
    venv = base / "yoyo"
    yoyo, pip = venv / "bin" / "yoyo", venv / "bin" / "pip"
    if not yoyo.exists():
        made = _run([sys.executable, "-m", "venv", "--clear", str(venv)])
        if made.returncode:
            return Peer("yoyo", (), missing=f"venv failed: {_last_line(made.stderr)}")
        done = _run([str(pip), "install", "--quiet", *YOYO_PACKAGES])
        if done.returncode or not yoyo.exists():
            return Peer(
                "yoyo", (), missing=f"pip install failed: {_last_line(done.stderr)}"
            )
    shown = _run([str(pip), "show", "yoyo-migrations"])
    version = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in shown.stdout.splitlines()
            if ln.startswith("Version:")
        ),
        "?",
    )
    return Peer("yoyo", (str(yoyo),), version)


def setup_psql() -> Peer:
    psql = shutil.which("psql")
    if psql is None:
        return Peer(
            "psql",
            (),
            missing="psql is not installed (apt-get install postgresql-client)",
        )
    found = re.search(r"\d+(?:\.\d+)+", _run([psql, "--version"]).stdout)
    return Peer("psql", (psql,), found.group(0) if found else "?")


def setup_all(base: Path = PEERS_DIR) -> dict[str, Peer]:
    """Install what is missing and describe every peer; never raises for a peer."""
    base.mkdir(parents=True, exist_ok=True)
    peers = [
        setup_dbmate(base),
        setup_graphile(base),
        setup_yoyo(base),
        setup_psql(),
    ]
    return {p.name: p for p in peers}


def main() -> int:
    for peer in setup_all().values():
        state = (
            f"missing: {peer.missing}"
            if peer.missing
            else f"{peer.version} {peer.command[-1]}"
        )
        print(f"{peer.name}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
