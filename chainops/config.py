"""Settings from arguments, the environment, `.env` and `[tool.chainops]`.

Precedence: arguments, then real environment variables, then `.env`, then
`pyproject.toml`. Also the password-free description of a database used in all output.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainops.errors import ConfigError

ENVIRONMENTS = ("development", "test", "production")
LIBPQ_VARIABLES = (
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGSERVICE",
)
_LIBPQ_PARAMS = {
    "PGHOST": "host",
    "PGHOSTADDR": "hostaddr",
    "PGPORT": "port",
    "PGDATABASE": "dbname",
    "PGUSER": "user",
    "PGSERVICE": "service",
    "PGPASSWORD": "password",
    "PGPASSFILE": "passfile",
    "PGSSLMODE": "sslmode",
}
_IDENTIFIER_LIMIT = 63  # NAMEDATALEN - 1: PostgreSQL truncates longer identifiers


@dataclass(frozen=True)
class LintSettings:
    """`[tool.chainops.lint]`: which rules, their severities, the target server."""

    disable: frozenset[str] = frozenset()
    enable: frozenset[str] = frozenset()  # rules that are off by default
    severity: tuple[tuple[str, str], ...] = ()  # (rule, "error" or "warning")
    target_version: int | None = None  # None: the connected server's, else 14
    large_table_rows: int = 1_000_000
    large_table_bytes: int = 1 << 30


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know; built once per command."""

    project_root: Path
    migrations_dir: Path
    environment: str = "development"
    database_url: str | None = None
    uses_libpq_env: bool = False
    ledger_schema: str = "public"
    lock_timeout: float = 60.0
    migration_lock_timeout: str = "5s"  # PostgreSQL's lock_timeout for each migration
    statement_timeout: str = "0"  # PostgreSQL's statement_timeout; 0 means none
    backup_keep: int = 10
    digest_key: Path | None = None  # Ed25519 private key (PEM) that signs digests
    digest_public_key: Path | None = None  # its public half, to check them
    lint: LintSettings = LintSettings()
    # The one schema the fingerprint covers; set by fleet mode for a tenant of a
    # schema-per-tenant database, whose neighbours' changes are not its drift.
    fingerprint_scope: str | None = None

    @property
    def is_production(self) -> bool:
        return self.environment == "production"


def find_project_root(start: Path) -> Path:
    """Return the nearest folder at or above `start` that holds a pyproject.toml."""
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return start


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's tables; a file that cannot be read is one ConfigError."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path.name} cannot be read: {err}; fix the file") from err
    return data


def _read_pyproject(root: Path) -> dict[str, Any]:
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}
    data = read_toml(path)
    section = data.get("tool", {}).get("chainops", {})
    return section if isinstance(section, dict) else {}


def read_dotenv(root: Path) -> dict[str, str]:
    """The project's `.env` as plain KEY=value pairs; empty when there is none."""
    path = root / ".env"
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def load_settings(
    *,
    cwd: Path | None = None,
    environ: dict[str, str] | None = None,
    database_url: str | None = None,
    migrations_dir: str | Path | None = None,
    environment: str | None = None,
    ledger_schema: str | None = None,
    lock_timeout: float | None = None,
) -> Settings:
    """Build Settings; keyword arguments are command-line options and win."""
    root = find_project_root((cwd or Path.cwd()).resolve())
    env = dict(os.environ if environ is None else environ)
    dotenv = read_dotenv(root)
    project = _read_pyproject(root)

    def lookup(name: str) -> str | None:
        value = env[name] if name in env else dotenv.get(name)
        return value or None

    url = database_url or lookup("DATABASE_URL")
    uses_libpq = url is None and any(lookup(v) for v in LIBPQ_VARIABLES)
    if uses_libpq:
        # libpq reads real environment variables itself; pass those from .env as
        # connection parameters rather than changing this process's environment.
        from psycopg.conninfo import make_conninfo

        params = {
            _LIBPQ_PARAMS[name]: dotenv[name]
            for name in _LIBPQ_PARAMS
            if name not in env and dotenv.get(name)
        }
        url = make_conninfo("", **params) if params else None

    env_name = environment or lookup("CHAINOPS_ENV") or "development"
    if env_name not in ENVIRONMENTS:
        raise ConfigError(
            f"CHAINOPS_ENV={env_name!r} is not a known environment; "
            f"use one of {', '.join(ENVIRONMENTS)}"
        )

    mdir = migrations_dir or lookup("CHAINOPS_MIGRATIONS_DIR")
    mpath = Path(mdir) if mdir else Path(project.get("migrations_dir", "migrations"))
    if not mpath.is_absolute():
        mpath = root / mpath

    schema = ledger_schema or lookup("CHAINOPS_LEDGER_SCHEMA")
    schema = schema or str(project.get("ledger_schema", "public"))
    validate_identifier(schema, "the ledger schema")

    timeout: Any = lock_timeout
    if timeout is None:
        timeout = lookup("CHAINOPS_LOCK_TIMEOUT") or project.get("lock_timeout", 60)
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds >= 0:
        raise ConfigError(
            f"lock timeout {timeout!r} is not a number of seconds; use for example 60"
        )

    def duration(name: str, key: str, default: str) -> str:
        value = str(lookup(name) or project.get(key, default)).strip()
        return validate_duration(value, name)

    keep = str(lookup("CHAINOPS_BACKUP_KEEP") or project.get("backup_keep", 10))
    if not keep.isdigit() or int(keep) < 1:
        raise ConfigError(
            f"CHAINOPS_BACKUP_KEEP={keep!r} is not a positive whole number; use e.g. 10"
        )

    def key_path(name: str, key: str) -> Path | None:
        value = lookup(name) or project.get(key)
        if not value:
            return None
        path = Path(str(value))
        return path if path.is_absolute() else root / path

    return Settings(
        project_root=root,
        migrations_dir=mpath,
        environment=env_name,
        database_url=url,
        uses_libpq_env=uses_libpq,
        ledger_schema=schema,
        lock_timeout=seconds,
        migration_lock_timeout=duration(
            "CHAINOPS_MIGRATION_LOCK_TIMEOUT", "migration_lock_timeout", "5s"
        ),
        statement_timeout=duration(
            "CHAINOPS_STATEMENT_TIMEOUT", "statement_timeout", "0"
        ),
        backup_keep=int(keep),
        digest_key=key_path("CHAINOPS_DIGEST_KEY", "digest_key"),
        digest_public_key=key_path("CHAINOPS_DIGEST_PUBLIC_KEY", "digest_public_key"),
        lint=parse_lint_settings(project.get("lint", {})),
    )


_SIZE = re.compile(r"^\s*(\d+)\s*(|B|kB|MB|GB|TB)\s*$", re.IGNORECASE)


def parse_lint_settings(table: object) -> LintSettings:
    """Check `[tool.chainops.lint]`; rule ids are checked by the linter itself."""
    where = "[tool.chainops.lint]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} is not a table; write it as a TOML table")
    unknown = sorted(set(table) - set(_LINT_KEYS))
    if unknown:
        raise ConfigError(
            f"{where} has an unknown key {unknown[0]!r}; use {', '.join(_LINT_KEYS)}"
        )

    def names(key: str) -> frozenset[str]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} {key} is not a list of rule ids; e.g. {key} = "
                              '["drop-table"]')  # fmt: skip
        return frozenset(value)

    severity = table.get("severity", {})
    if not isinstance(severity, dict) or not all(
        v in ("error", "warning") for v in severity.values()
    ):
        raise ConfigError(
            f"{where} severity maps rule ids to error or warning; e.g. "
            'severity = { drop-table = "error" }'
        )
    version = table.get("target_version")
    if version is not None and (not isinstance(version, int) or version < 10):
        raise ConfigError(f"{where} target_version {version!r} is not a PostgreSQL "
                          "major version; use e.g. 16")  # fmt: skip
    rows = table.get("large_table_rows", LintSettings.large_table_rows)
    if not isinstance(rows, int) or rows < 0:
        raise ConfigError(f"{where} large_table_rows {rows!r} is not a whole number")
    return LintSettings(
        names("disable"),
        names("enable"),
        tuple(sorted(severity.items())),
        version,
        rows,
        _bytes(table.get("large_table_bytes", LintSettings.large_table_bytes)),
    )


_LINT_KEYS = ("disable", "enable", "severity", "target_version", "large_table_rows",
              "large_table_bytes")  # fmt: skip
_UNITS = {"": 1, "b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}


def _bytes(value: object) -> int:
    match = _SIZE.match(str(value)) if isinstance(value, (int, str)) else None
    if match is None:
        raise ConfigError(f"[tool.chainops.lint] large_table_bytes {value!r} is not "
                          'a size; use e.g. 1073741824 or "1GB"')  # fmt: skip
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


DURATION = re.compile(r"^\d+(?:\.\d+)?\s*(?:us|ms|s|min|h|d)?$")


def validate_duration(value: str, what: str) -> str:
    """Accept PostgreSQL duration settings such as 5s, 500ms, 2min or 0."""
    if not DURATION.match(value):
        raise ConfigError(
            f"{what}={value!r} is not a duration; use for example 5s, 500ms or 2min"
        )
    return value


def validate_identifier(name: str, what: str) -> None:
    """Refuse identifiers PostgreSQL would truncate or cannot store."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # undecodable bytes from the command line
        size = 0
    if not size or size > _IDENTIFIER_LIMIT or "\x00" in name:
        raise ConfigError(
            f"{what} {name!r} is not a valid PostgreSQL identifier; "
            f"use 1 to {_IDENTIFIER_LIMIT} bytes of UTF-8 without NUL characters"
        )
    if name.startswith("pg_"):  # CREATE SCHEMA refuses it: reserved for the system
        raise ConfigError(
            f"{what} {name!r} starts with pg_, which PostgreSQL reserves for system "
            "schemas; choose another name"
        )


def describe_database(conninfo: str) -> str:
    """Describe a database as host:port/dbname, never including a password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(conninfo)
    except Exception:
        return "the database in DATABASE_URL (unparsable)"
    host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
    port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
    dbname = str(
        params.get("dbname")
        or os.environ.get("PGDATABASE")
        or params.get("user")
        or os.environ.get("PGUSER")
        or "postgres"
    )
    if host.startswith("/"):
        host = f"[{host}]"
    return f"{host}:{port}/{dbname}"


_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@\s]*)(@)", re.I)
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove passwords from text: URL userinfo, password= pairs and known secrets."""
    text = _URL_PASSWORD.sub(r"\1***\3", text)
    text = _KV_PASSWORD.sub(r"\1***", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def password_of(conninfo: str | None) -> tuple[str, ...]:
    """Return the password in a conninfo (raw and URL-encoded forms) for redaction."""
    if not conninfo:
        return ()
    from urllib.parse import quote, unquote, urlsplit

    found: list[str] = []
    try:
        from psycopg.conninfo import conninfo_to_dict

        pw = conninfo_to_dict(conninfo).get("password")
        if pw:
            found.append(str(pw))
    except Exception:
        pass
    try:
        raw = urlsplit(conninfo).password
        if raw:
            found += [raw, unquote(raw)]
    except ValueError:
        pass
    return tuple({s for p in found for s in (p, quote(p, safe=""))})
