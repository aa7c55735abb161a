"""Scratch databases on the common PostgreSQL: create fresh, checkpoint, drop.

Every name starts with chainops_bench_ so that only the benchmark's own databases are
ever dropped. Identifiers go through psycopg.sql.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

PREFIX = "chainops_bench_"


class Server:
    """An autocommit admin connection to the server every tool shares."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.admin = psycopg.connect(url, autocommit=True)
        self.made: set[str] = set()

    def url_for(self, name: str) -> str:
        """The server URL with another database name."""
        params = conninfo_to_dict(self.url)
        user = params.get("user", "postgres")
        host = params.get("host", "127.0.0.1")
        port = params.get("port", "5432")
        password = f":{params['password']}" if params.get("password") else ""
        return f"postgresql://{user}{password}@{host}:{port}/{name}"

    def conninfo_for(self, name: str) -> str:
        return make_conninfo(self.url, dbname=name)

    def fresh(self, name: str) -> str:
        """Drop and create database `name`, then CHECKPOINT; returns its URL."""
        assert name.startswith(PREFIX), name
        self.drop(name)
        self.admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.made.add(name)
        self.checkpoint()
        return self.url_for(name)

    def drop(self, name: str) -> None:
        assert name.startswith(PREFIX), name
        self.admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )
        self.made.discard(name)

    def checkpoint(self) -> None:
        self.admin.execute("CHECKPOINT")

    def settle(self, name: str) -> None:
        """VACUUM ANALYZE a set-up database and CHECKPOINT, so that autovacuum does
        not work on its new tables (on the other core) while tools are timed."""
        assert name.startswith(PREFIX), name
        with psycopg.connect(self.conninfo_for(name), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        self.checkpoint()

    def describe(self) -> str:
        """Version and the settings that decide commit cost."""
        row = self.admin.execute(
            "SELECT current_setting('server_version'),"
            " current_setting('synchronous_commit'), current_setting('fsync'),"
            " current_setting('shared_buffers'), current_setting('wal_level')"
        ).fetchone()
        assert row is not None
        version, sync, fsync, buffers, wal = row
        return (
            f"PostgreSQL {version} over loopback TCP (synchronous_commit={sync}, "
            f"fsync={fsync}, shared_buffers={buffers}, wal_level={wal})"
        )

    def close(self) -> None:
        for name in sorted(self.made):
            self.drop(name)
        self.admin.close()


@contextmanager
def server(url: str, keep: bool = False) -> Iterator[Server]:
    srv = Server(url)
    try:
        yield srv
    finally:
        if keep:
            srv.admin.close()
        else:
            srv.close()
