"""Settings from arguments, environment, .env and pyproject; password-free output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from chainops.config import (
    LIBPQ_VARIABLES,
    describe_database,
    load_settings,
    password_of,
    redact,
)
from chainops.errors import ConfigError

_PROCESS_VARIABLES = (*LIBPQ_VARIABLES, "PGPASSWORD", "PGPASSFILE", "PGSSLMODE")


@pytest.fixture(autouse=True)
def no_libpq_environment(monkeypatch):
    """Hide the runner's PG* variables, and undo any load_settings copies into them."""
    for name in _PROCESS_VARIABLES:
        # setenv first so that monkeypatch restores "unset" even if a test sets it.
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)


def make_project(
    root: Path, pyproject: str = "", dotenv: dict[str, str] | None = None
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "app"\n\n[tool.chainops]\n' + pyproject, encoding="utf-8"
    )
    if dotenv is not None:
        (root / ".env").write_text(
            "".join(f"{k}={v}\n" for k, v in dotenv.items()), encoding="utf-8"
        )
    return root


# --- defaults and precedence -----------------------------------------------------


def test_load_settings_returns_defaults_when_nothing_is_configured(tmp_path):
    root = make_project(tmp_path / "app")

    settings = load_settings(cwd=root, environ={})

    assert settings.project_root == root.resolve()
    assert settings.migrations_dir == root.resolve() / "migrations"
    assert settings.environment == "development"
    assert not settings.is_production
    assert settings.database_url is None
    assert settings.uses_libpq_env is False
    assert settings.ledger_schema == "public"
    assert settings.lock_timeout == 60.0


def test_load_settings_finds_project_root_when_started_in_subfolder(tmp_path):
    root = make_project(tmp_path / "app", dotenv={"CHAINOPS_ENV": "test"})
    nested = root / "src" / "app"
    nested.mkdir(parents=True)

    settings = load_settings(cwd=nested, environ={})

    assert settings.project_root == root.resolve()
    assert settings.migrations_dir == root.resolve() / "migrations"
    assert settings.environment == "test"  # the .env beside pyproject.toml is read


# Each row: the attribute, its env/.env variable, its [tool.chainops] key (or None),
# the keyword argument, then the value each layer provides.
SETTINGS_SOURCES = [
    (
        "lock_timeout",
        "CHAINOPS_LOCK_TIMEOUT",
        "lock_timeout",
        {"pyproject": "30", "dotenv": "20", "env": "10", "arg": 5.0},
        {"pyproject": 30.0, "dotenv": 20.0, "env": 10.0, "arg": 5.0},
    ),
    (
        "ledger_schema",
        "CHAINOPS_LEDGER_SCHEMA",
        "ledger_schema",
        {"pyproject": '"p"', "dotenv": "d", "env": "e", "arg": "a"},
        {"pyproject": "p", "dotenv": "d", "env": "e", "arg": "a"},
    ),
    (
        "migrations_dir",
        "CHAINOPS_MIGRATIONS_DIR",
        "migrations_dir",
        {"pyproject": '"db/p"', "dotenv": "db/d", "env": "db/e", "arg": "db/a"},
        {"pyproject": "db/p", "dotenv": "db/d", "env": "db/e", "arg": "db/a"},
    ),
    (
        "environment",
        "CHAINOPS_ENV",
        None,
        {"dotenv": "test", "env": "production", "arg": "development"},
        {"dotenv": "test", "env": "production", "arg": "development"},
    ),
    (
        "database_url",
        "DATABASE_URL",
        None,
        {
            "dotenv": "postgresql://dotenv/db",
            "env": "postgresql://env/db",
            "arg": "postgresql://arg/db",
        },
        {
            "dotenv": "postgresql://dotenv/db",
            "env": "postgresql://env/db",
            "arg": "postgresql://arg/db",
        },
    ),
]

LAYERS = ["pyproject", "dotenv", "env", "arg"]


def _cases():
    for attribute, variable, key, given, expected in SETTINGS_SOURCES:
        present = [layer for layer in LAYERS if layer in given]
        # For each layer, give it and every layer below it: it must win.
        for top in range(len(present)):
            layers = present[: top + 1]
            yield pytest.param(
                attribute,
                variable,
                key,
                {layer: given[layer] for layer in layers},
                expected[layers[-1]],
                id="-".join([attribute, *reversed(layers)]),
            )


@pytest.mark.parametrize(
    ("attribute", "variable", "key", "layers", "expected"), list(_cases())
)
def test_load_settings_uses_highest_source_when_several_set_a_value(
    tmp_path, attribute, variable, key, layers, expected
):
    pyproject = f"{key} = {layers['pyproject']}\n" if "pyproject" in layers else ""
    dotenv = {variable: layers["dotenv"]} if "dotenv" in layers else None
    root = make_project(tmp_path / "app", pyproject, dotenv)
    environ = {variable: layers["env"]} if "env" in layers else {}
    kwargs = {attribute: layers["arg"]} if "arg" in layers else {}

    settings = load_settings(cwd=root, environ=environ, **kwargs)

    value = getattr(settings, attribute)
    if attribute == "migrations_dir":
        assert value == root.resolve() / expected
    else:
        assert value == expected


def test_load_settings_keeps_absolute_migrations_dir_when_given_one(tmp_path):
    root = make_project(tmp_path / "app")
    elsewhere = tmp_path / "shared-migrations"

    settings = load_settings(
        cwd=root, environ={"CHAINOPS_MIGRATIONS_DIR": str(elsewhere)}
    )

    assert settings.migrations_dir == elsewhere


def test_load_settings_marks_production_when_chainops_env_is_production(tmp_path):
    root = make_project(tmp_path / "app")

    settings = load_settings(cwd=root, environ={"CHAINOPS_ENV": "production"})

    assert settings.is_production


# --- refusals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "dotenv", "kwargs", "words"),
    [
        pytest.param({"CHAINOPS_ENV": "prod"}, None, {}, ["CHAINOPS_ENV", "'prod'"]),
        pytest.param({"CHAINOPS_ENV": "Production"}, None, {}, ["'Production'"]),
        pytest.param({}, {"CHAINOPS_ENV": "staging"}, {}, ["'staging'"], id="dotenv"),
        pytest.param({}, None, {"environment": "qa"}, ["'qa'"], id="argument"),
    ],
)
def test_load_settings_raises_config_error_when_environment_is_unknown(
    tmp_path, environ, dotenv, kwargs, words
):
    root = make_project(tmp_path / "app", dotenv=dotenv)

    with pytest.raises(ConfigError) as caught:
        load_settings(cwd=root, environ=environ, **kwargs)

    message = str(caught.value)
    for word in [*words, "development", "test", "production"]:
        assert word in message
    assert "\n" not in message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("environ", "pyproject", "kwargs"),
    [
        pytest.param({"CHAINOPS_LOCK_TIMEOUT": "abc"}, "", {}, id="word"),
        pytest.param({"CHAINOPS_LOCK_TIMEOUT": "-1"}, "", {}, id="negative"),
        pytest.param({"CHAINOPS_LOCK_TIMEOUT": "nan"}, "", {}, id="nan"),
        pytest.param({"CHAINOPS_LOCK_TIMEOUT": "60s"}, "", {}, id="unit"),
        pytest.param({}, 'lock_timeout = "soon"\n', {}, id="pyproject-word"),
        pytest.param({}, "lock_timeout = -5\n", {}, id="pyproject-negative"),
        pytest.param({}, "", {"lock_timeout": -0.5}, id="argument-negative"),
    ],
)
def test_load_settings_raises_config_error_when_lock_timeout_is_invalid(
    tmp_path, environ, pyproject, kwargs
):
    root = make_project(tmp_path / "app", pyproject)

    with pytest.raises(ConfigError) as caught:
        load_settings(cwd=root, environ=environ, **kwargs)

    assert "lock timeout" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_load_settings_accepts_zero_lock_timeout_when_waiting_is_not_wanted(tmp_path):
    root = make_project(tmp_path / "app")

    settings = load_settings(cwd=root, environ={"CHAINOPS_LOCK_TIMEOUT": "0"})

    assert settings.lock_timeout == 0.0


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param("s" * 64, id="64-ascii-bytes"),
        pytest.param("é" * 32, id="64-utf8-bytes-in-32-characters"),
        pytest.param("a\x00b", id="nul"),
    ],
)
def test_load_settings_raises_config_error_when_schema_is_not_an_identifier(
    tmp_path, schema
):
    root = make_project(tmp_path / "app")

    with pytest.raises(ConfigError) as caught:
        load_settings(cwd=root, environ={"CHAINOPS_LEDGER_SCHEMA": schema})

    assert "63" in str(caught.value)


@pytest.mark.parametrize("schema", ["s" * 63, "é" * 31 + "s", "chainops"])
def test_load_settings_accepts_schema_when_it_fits_63_bytes(tmp_path, schema):
    root = make_project(tmp_path / "app")

    settings = load_settings(cwd=root, environ={"CHAINOPS_LEDGER_SCHEMA": schema})

    assert settings.ledger_schema == schema


def test_load_settings_raises_config_error_when_pyproject_is_invalid_toml(tmp_path):
    root = tmp_path / "app"
    root.mkdir()
    (root / "pyproject.toml").write_text("[tool.chainops\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_settings(cwd=root, environ={})

    assert str(caught.value).startswith("pyproject.toml ")


# --- libpq variables -------------------------------------------------------------


@pytest.mark.parametrize("variable", LIBPQ_VARIABLES)
def test_load_settings_uses_libpq_env_when_pg_variable_is_set_without_url(
    tmp_path, variable
):
    root = make_project(tmp_path / "app")

    settings = load_settings(cwd=root, environ={variable: "db.internal"})

    assert settings.uses_libpq_env is True
    assert settings.database_url is None


def test_load_settings_prefers_database_url_when_pg_variables_are_also_set(tmp_path):
    root = make_project(tmp_path / "app")

    settings = load_settings(
        cwd=root, environ={"PGHOST": "db.internal", "DATABASE_URL": "postgresql:///x"}
    )

    assert settings.uses_libpq_env is False
    assert settings.database_url == "postgresql:///x"


def test_load_settings_passes_dotenv_pg_variables_to_libpq_when_no_url(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("PGHOST", raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    root = make_project(
        tmp_path / "app", dotenv={"PGHOST": "db.internal", "PGPASSWORD": "s3cret"}
    )

    settings = load_settings(cwd=root, environ={})

    assert settings.uses_libpq_env is True
    # .env values travel as connection parameters; the process environment is untouched.
    assert conninfo_to_dict(settings.database_url or "") == {
        "host": "db.internal",
        "password": "s3cret",
    }
    assert "PGHOST" not in os.environ
    assert "PGPASSWORD" not in os.environ


# --- password-free descriptions --------------------------------------------------


@pytest.mark.parametrize(
    ("conninfo", "expected"),
    [
        pytest.param(
            "postgresql://alice:s3cret@db.example.com:6543/shop",
            "db.example.com:6543/shop",
            id="url",
        ),
        pytest.param(
            "postgres://alice:s3cret@db.example.com/shop",
            "db.example.com:5432/shop",
            id="url-default-port",
        ),
        pytest.param(
            "postgresql://alice:p%40ss%3Aw%2F@db/shop", "db:5432/shop", id="url-encoded"
        ),
        pytest.param(
            "host=db.example.com port=5433 dbname=shop user=alice password=s3cret",
            "db.example.com:5433/shop",
            id="key-value",
        ),
        pytest.param(
            "host=db dbname=shop password='s3 cret'", "db:5432/shop", id="quoted"
        ),
        pytest.param(
            "postgresql://alice:s3cret@/shop?host=/var/run/postgresql",
            "[/var/run/postgresql]:5432/shop",
            id="url-socket",
        ),
        pytest.param(
            "host=/tmp dbname=shop password=s3cret", "[/tmp]:5432/shop", id="kv-socket"
        ),
        pytest.param(
            "postgresql://alice:s3cret@localhost", "localhost:5432/alice", id="no-db"
        ),
        pytest.param(
            "host=db password='s3cret",
            "the database in DATABASE_URL (unparsable)",
            id="unparsable",
        ),
    ],
)
def test_describe_database_omits_password_when_conninfo_has_one(conninfo, expected):
    described = describe_database(conninfo)

    assert described == expected
    assert "s3cret" not in described
    assert "s3 cret" not in described
    assert "p%40ss" not in described


# --- redaction -------------------------------------------------------------------

ENCODED = "p%40ss%3Aw%2Fo%25r%23d%3Fx%26y"  # p@ss:w/o%r#d?x&y
RAW = "p@ss:w/o%r#d?x&y"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "cannot connect to postgresql://alice:s3cret@db:5432/shop",
            "cannot connect to postgresql://alice:***@db:5432/shop",
            id="url",
        ),
        pytest.param(
            "postgres://alice:s3cret@db/shop",
            "postgres://alice:***@db/shop",
            id="postgres-scheme",
        ),
        pytest.param(
            f"url=postgresql://alice:{ENCODED}@db/shop?sslmode=require failed",
            "url=postgresql://alice:***@db/shop?sslmode=require failed",
            id="url-encoded-special-characters",
        ),
        pytest.param(
            "postgresql://:s3cret@db/shop", "postgresql://:***@db/shop", id="no-user"
        ),
        pytest.param(
            "host=db password=s3cret dbname=shop",
            "host=db password=*** dbname=shop",
            id="key-value",
        ),
        pytest.param(
            "host=db password = s3cret dbname=shop",
            "host=db password = *** dbname=shop",
            id="key-value-spaces",
        ),
        pytest.param(
            "host=db PASSWORD=s3cret", "host=db PASSWORD=***", id="key-value-upper"
        ),
        pytest.param(
            "host=db password='s3 cr\\'et' dbname=shop",
            "host=db password=*** dbname=shop",
            id="key-value-quoted",
        ),
        pytest.param(
            "postgresql://db/shop?password=s3cret",
            "postgresql://db/shop?password=***",
            id="query-parameter",
        ),
        pytest.param(
            "a: postgresql://u:one@h/d b: postgresql://u:two@h/d",
            "a: postgresql://u:***@h/d b: postgresql://u:***@h/d",
            id="two-urls",
        ),
    ],
)
def test_redact_removes_password_when_text_contains_one(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://alice@db:5432/shop",
        "host=db dbname=shop user=alice",
        '001-schema/001-a.sql: syntax error at or near "TABLE"',
        "",
    ],
)
def test_redact_keeps_text_when_it_holds_no_password(text):
    assert redact(text) == text


def test_redact_removes_known_secret_when_it_appears_outside_a_url():
    url = f"postgresql://alice:{ENCODED}@db/shop"
    message = f'password authentication failed; tried "{RAW}" and {ENCODED}'

    redacted = redact(message, password_of(url))

    assert RAW not in redacted
    assert ENCODED not in redacted
    assert redacted.count("***") == 2


@pytest.mark.parametrize(
    ("conninfo", "expected"),
    [
        pytest.param(
            f"postgresql://alice:{ENCODED}@db/shop", {RAW, ENCODED}, id="url-encoded"
        ),
        pytest.param("postgresql://alice:s3cret@db/shop", {"s3cret"}, id="url"),
        pytest.param("host=db password=s3cret", {"s3cret"}, id="key-value"),
        pytest.param("host=db password='s3 cret'", {"s3 cret", "s3%20cret"}, id="kv"),
    ],
)
def test_password_of_returns_raw_and_encoded_forms_when_conninfo_has_password(
    conninfo, expected
):
    found = password_of(conninfo)

    assert expected <= set(found)
    assert "" not in found


@pytest.mark.parametrize(
    "conninfo", [None, "", "postgresql://alice@db/shop", "host=db dbname=shop"]
)
def test_password_of_returns_nothing_when_conninfo_has_no_password(conninfo):
    assert password_of(conninfo) == ()
