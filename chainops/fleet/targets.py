"""The fleet's targets from `fleet.toml`: databases by name, never a password.

Each `[[target]]` names its URL through an environment variable (`url_env`) or a
password-free `url`; `schema` makes it one tenant of a schema-per-tenant database
(its own ledger in that schema, its files run with that `search_path`). A
`[[tenants]]` table expands one database into a target per schema, listed or found
by a query; a `[[catalog]]` table asks a database which targets there are (a query
returning name and URL). Tags choose waves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainops.config import describe_database, password_of, read_toml
from chainops.errors import ConfigError

FLEET_FILE = "fleet.toml"
_NAME = re.compile(r"^[A-Za-z0-9_.:@/-]{1,100}$")
Query = Callable[[str, str], list[tuple[str, ...]]]  # (conninfo, SQL) -> rows as text


@dataclass(frozen=True)
class FleetTarget:
    """One database (or one tenant schema in it) the fleet migrates."""

    name: str
    conninfo: str
    tags: tuple[str, ...] = ()
    schema: str | None = None  # schema-per-tenant: the ledger and search_path

    @property
    def description(self) -> str:
        where = describe_database(self.conninfo)
        return f"{where} schema {self.schema}" if self.schema else where

    @property
    def server(self) -> str:
        """host:port, what the per-server limit counts connections on."""
        return describe_database(self.conninfo).rsplit("/", 1)[0]


def read_targets(
    path: Path, environ: Mapping[str, str], query: Query
) -> list[FleetTarget]:
    """Every target in the file, in order; a bad entry is one ConfigError naming it."""
    if not path.is_file():
        raise ConfigError(
            f"{path} does not exist; list the databases in it (README, Fleet mode) "
            "or pass --targets FILE"
        )
    data = read_toml(path)
    found: list[FleetTarget] = []
    for i, entry in enumerate(_tables(data, "target", path), 1):
        where = f"{path.name}: target {entry.get('name') or i}"
        found.append(
            FleetTarget(
                _name(entry, where),
                _url(entry, environ, where),
                _tags(entry, where),
                _optional_text(entry, "schema", where),
            )
        )
    for i, entry in enumerate(_tables(data, "tenants", path), 1):
        where = f"{path.name}: tenants {entry.get('name') or i}"
        url = _url(entry, environ, where)
        schemas = entry.get("schemas")
        sql = _optional_text(entry, "schemas_query", where)
        if (schemas is None) == (sql is None):
            raise ConfigError(f"{where}: give either schemas = [...] or schemas_query")
        listed = [row[0] for row in query(url, sql)] if sql else None
        if listed is not None and not all(listed):
            raise ConfigError(f"{where}: schemas_query returned a NULL or empty name")
        names = listed if listed is not None else _texts(schemas, where)
        prefix = _optional_text(entry, "name", where)
        found += [
            FleetTarget(f"{prefix}/{s}" if prefix else s, url, _tags(entry, where), s)
            for s in names
        ]
    for i, entry in enumerate(_tables(data, "catalog", path), 1):
        where = f"{path.name}: catalog {i}"
        sql = _optional_text(entry, "query", where)
        if sql is None:
            raise ConfigError(f"{where}: give the query that returns name, url")
        for row in query(_url(entry, environ, where), sql):
            if len(row) < 2 or not _NAME.match(row[0]):
                raise ConfigError(
                    f"{where}: the query must return name, url, each name 1-100 "
                    "letters, digits or . _ - : @ /"
                )
            found.append(FleetTarget(row[0], row[1], _tags(entry, where)))
    _unique(found, path)
    return found


def _tables(data: dict[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{path.name}: {key} must be a list of [[{key}]] tables")
    return entries


def _name(entry: dict[str, Any], where: str) -> str:
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: name must be 1-100 letters, digits or . _ - : @ /")
    return name


def _url(entry: dict[str, Any], environ: Mapping[str, str], where: str) -> str:
    url, variable = entry.get("url"), entry.get("url_env")
    if (url is None) == (variable is None):
        raise ConfigError(f"{where}: give either url_env (preferred) or url")
    if variable is not None:
        if not isinstance(variable, str) or not variable:
            raise ConfigError(f"{where}: url_env must name an environment variable")
        if not environ.get(variable):
            raise ConfigError(f"{where}: the environment variable {variable} is unset")
        return environ[variable]
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{where}: url must be text")
    if password_of(url):
        raise ConfigError(
            f"{where}: url holds a password, which must not be written in the file; "
            "put the URL in an environment variable and name it with url_env"
        )
    return url


def _tags(entry: dict[str, Any], where: str) -> tuple[str, ...]:
    return tuple(_texts(entry.get("tags", []), where))


def _texts(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of names")
    return list(value)


def _optional_text(entry: dict[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{where}: {key} must be text")
    return value


def _unique(found: Sequence[FleetTarget], path: Path) -> None:
    seen: set[str] = set()
    for target in found:
        if target.name in seen:
            raise ConfigError(f"{path.name}: target {target.name} is listed twice")
        seen.add(target.name)
    if not found:
        raise ConfigError(f"{path.name} lists no targets; add [[target]] tables")
