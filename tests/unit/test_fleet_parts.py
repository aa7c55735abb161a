"""Fleet mode from plain objects: the targets file, waves, records and reports."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from chainops import cli
from chainops.errors import ConfigError
from chainops.fleet import record, report
from chainops.fleet.run import FleetOptions, Outcome, for_target, order
from chainops.fleet.survey import TargetState
from chainops.fleet.targets import FleetTarget, read_targets

URL = "postgresql://app@db1:5432/tenant_a"


def no_query(_url: str, _query: str) -> list[tuple[str, ...]]:
    raise AssertionError("no query expected")


def targets_from(tmp_path: Path, text: str, environ=None, query=no_query):
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    return read_targets(path, environ or {}, query)


def test_targets_read_names_urls_from_the_environment_tags_and_tenants(tmp_path):
    found = targets_from(
        tmp_path,
        '[[target]]\nname = "a"\nurl_env = "A_URL"\ntags = ["canary"]\n'
        f'[[target]]\nname = "b"\nurl = "{URL}"\n'
        '[[tenants]]\nname = "shared"\nurl_env = "A_URL"\nschemas = ["t1", "t2"]\n',
        {"A_URL": "postgresql://app:pw@db0/app"},
    )

    assert [(t.name, t.tags, t.schema) for t in found] == [
        ("a", ("canary",), None),
        ("b", (), None),
        ("shared/t1", (), "t1"),
        ("shared/t2", (), "t2"),
    ]
    assert found[0].conninfo == "postgresql://app:pw@db0/app"
    assert found[1].server == "db1:5432"


def test_tenants_found_by_a_query_become_one_target_each(tmp_path):
    asked: list[tuple[str, str]] = []

    def query(url: str, sql: str) -> list[tuple[str, ...]]:
        asked.append((url, sql))
        return [("t1",), ("t2",), ("t3",)]

    found = targets_from(
        tmp_path,
        f'[[tenants]]\nurl = "{URL}"\nschemas_query = "SELECT nspname FROM x"\n',
        query=query,
    )

    assert [t.name for t in found] == ["t1", "t2", "t3"]
    assert asked == [(URL, "SELECT nspname FROM x")]


def test_a_tenants_query_returning_null_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="returned a NULL or empty name"):
        targets_from(
            tmp_path,
            f'[[tenants]]\nurl = "{URL}"\nschemas_query = "SELECT NULL"\n',
            query=lambda _url, _sql: [("t1",), ("",)],
        )


def test_a_catalog_query_lists_targets_with_their_urls(tmp_path):
    def query(url: str, sql: str) -> list[tuple[str, ...]]:
        assert (url, sql) == (URL, "SELECT name, url FROM tenants")
        return [("acme", "postgresql://app@db2/acme"), ("initech", URL)]

    found = targets_from(
        tmp_path,
        f'[[catalog]]\nurl = "{URL}"\nquery = "SELECT name, url FROM tenants"\n'
        'tags = ["eu"]\n',
        query=query,
    )

    assert [(t.name, t.conninfo, t.tags) for t in found] == [
        ("acme", "postgresql://app@db2/acme", ("eu",)),
        ("initech", URL, ("eu",)),
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[[target]]\nname = "a"\nurl = "postgresql://u:secret@h/d"\n', "password"),
        ('[[target]]\nname = "a"\nurl_env = "UNSET_URL"\n', "UNSET_URL is unset"),
        ('[[target]]\nname = "a"\n', "either url_env"),
        (f'[[target]]\nname = "a b"\nurl = "{URL}"\n', "name must be"),
        (f'[[target]]\nname = "a"\nurl = "{URL}"\n' * 2, "listed twice"),
        ("target = 1\n", "must be a list"),
        ("[[target]\n", "cannot be read"),
        ("", "lists no targets"),
        (f'[[tenants]]\nurl = "{URL}"\n', "either schemas"),
        (f'[[catalog]]\nurl = "{URL}"\n', "the query that returns name, url"),
        ('[[target]]\nname = "a"\nurl_env = 3\n', "url_env must name"),
    ],
)
def test_targets_file_mistakes_are_one_line_naming_the_entry(tmp_path, text, says):
    with pytest.raises(ConfigError) as caught:
        targets_from(tmp_path, text)

    assert says in str(caught.value)
    assert "secret" not in str(caught.value)


def test_a_missing_targets_file_says_how_to_start_one(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_targets(tmp_path / "fleet.toml", {}, no_query)


def fleet(*tags: tuple[str, ...]) -> list[FleetTarget]:
    return [FleetTarget(f"t{i}", URL, t) for i, t in enumerate(tags)]


def test_order_runs_canaries_then_each_wave_then_the_rest():
    targets = fleet((), ("eu",), ("us",), ("eu",), (), ("us", "eu"))

    waves = order(targets, FleetOptions(canary=1, waves=("eu", "us")))

    assert waves == [[0], [1, 3, 5], [2], [4]]


def test_order_is_one_wave_when_nothing_goes_first():
    assert order(fleet((), (), ()), FleetOptions()) == [[0, 1, 2]]


def outcomes() -> tuple[Outcome, ...]:
    return (
        Outcome("a", "migrated", applied=2, height=5, head="ab" * 32, migrations=5),
        Outcome("b", "failed", "unreachable", message="cannot connect to h:1/b"),
        Outcome("c", "up to date", height=5, head="cd" * 32, migrations=5),
    )


def test_record_saves_privately_and_loads_by_id_or_last(tmp_path):
    run = record.RunRecord("20261202T000000Z-beef", "now", "ff" * 32, "fleet.toml",
                           outcomes())  # fmt: skip

    path = record.save(tmp_path, run)

    assert path.stat().st_mode & 0o777 == 0o600
    assert record.load(tmp_path, run.run_id) == run
    assert record.load(tmp_path, "last") == run
    assert run.unfinished == ["b"]
    with pytest.raises(ConfigError, match="no fleet run nope"):
        record.load(tmp_path, "nope")


def test_merge_puts_the_rerun_targets_outcomes_in_their_place():
    run = record.RunRecord("r", "now", "", "fleet.toml", outcomes())
    fixed = Outcome("b", "migrated", applied=5, height=5, migrations=5)

    merged = record.merge(run, [fixed], ["a", "b", "c"])

    assert [o.status for o in merged] == ["migrated", "migrated", "up to date"]


def test_merge_drops_targets_no_longer_listed_and_adds_new_ones_last():
    run = record.RunRecord("r", "now", "", "fleet.toml", outcomes())
    added = Outcome("d", "migrated", applied=5, height=5, migrations=5)

    merged = record.merge(run, [added], ["a", "c", "d"])

    assert [o.name for o in merged] == ["a", "c", "d"]


def test_junit_has_one_case_per_target_and_a_failure_with_its_line():
    run = record.RunRecord("r", "now", "", "fleet.toml", outcomes())

    suite = ElementTree.fromstring(report.run_junit(run).split("?>", 1)[1])

    assert suite.get("tests") == "3"
    assert suite.get("failures") == "1"
    failure = suite.find("testcase[@name='b']/failure")
    assert failure is not None
    assert "cannot connect" in (failure.text or "")


def test_state_lines_say_where_the_healthy_targets_are():
    states = [
        TargetState("a", True, 5, "ab" * 32, 0, "", 5),
        TargetState("bb", True, 4, "cd" * 32, 1, "", 4),
        TargetState("c", False, problem="cannot connect"),
    ]

    lines = report.state_lines(states)

    assert lines[1].startswith("✓ a ")
    assert lines[3].startswith("✗ c ")
    assert lines[3].endswith("cannot connect")
    assert lines[-1] == "2 of 3 targets verified; at 4 migrations (1), 5 migrations (1)"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["migrate", "--parallel", "0"], "--parallel and --per-server must be 1"),
        (["status", "--per-server", "-1"], "--parallel and --per-server must be 1"),
        (["migrate", "--max-failures", "2"], "--max-failures is a ratio"),
        (["migrate", "--canary", "-1"], "--canary is a number of targets"),
        (["verify", "--format", "xml"], "--format xml is unknown"),
        (["migrate", "--database-url", URL], "not --database-url"),
        (["migrate", "--resume", "nope"], "no fleet run nope"),
    ],
)
def test_fleet_command_mistakes_are_one_line_and_exit_2(
    tmp_path, monkeypatch, capsys, argv, says
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "migrations").mkdir()
    (tmp_path / "fleet.toml").write_text(f'[[target]]\nname = "a"\nurl = "{URL}"\n')

    code = cli.main(["fleet", *argv])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert says in err[0]


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ("cannot connect to h:1/x: refused; check DATABASE_URL in the environment"
         " or .env", "cannot connect to h:1/x: refused; check the target's URL"),
        ("DATABASE_URL is not a valid connection string (bad); use postgresql://…",
         "the target's URL is not a connection string (bad); use postgresql://…"),
        ("password s3cret was refused", "password *** was refused"),
    ],
)  # fmt: skip
def test_messages_speak_of_the_target_and_never_show_its_password(message, says):
    target = FleetTarget("a", "postgresql://app:s3cret@db1/a")

    assert for_target(message, target) == says
