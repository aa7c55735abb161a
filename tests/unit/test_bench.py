"""The benchmark's pure parts: layouts, rusage and import parsing, the targets table.

Timings themselves are never asserted; they are read from the table bench prints.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.generate import chainops_path, graphile_hash, tiny_sql, write_tiny
from bench.imports import parse_importtime
from bench.measure import Sample, read_rusage, summarise
from bench.peers import setup_graphile
from bench.runner import GroupResult, Row
from bench.table import medians_table, targets_table
from bench.workloads import PSQL_TX, Group
from chainops.source.files import discover


@pytest.mark.parametrize(
    ("i", "expected"),
    [
        (0, "001-part1/001-t.sql"),
        (99, "001-part1/100-t.sql"),
        (100, "002-part2/001-t.sql"),
    ],
)
def test_chainops_path_fills_folders_of_100(i, expected):
    assert chainops_path(Path("m"), i, "t") == Path("m") / expected


def test_write_tiny_gives_every_tool_the_same_sql(tmp_path):
    layout = write_tiny(tmp_path / "w", 150)
    files = discover(layout.chainops)
    assert [f.number for f in files][-1] == layout.last_number == 2050
    yoyo = sorted(layout.yoyo.iterdir())
    assert len(yoyo) == len(layout.plain) == 150
    assert yoyo[0].read_text() == files[0].text
    assert layout.concatenated.read_text() == "".join(f.text for f in files)
    dbmate = sorted(layout.dbmate.iterdir())[0].read_text()
    assert dbmate.startswith("-- migrate:up\n" + files[0].text)


# Pinned from graphile-migrate 1.4.1's own calculateHash (dist/hash.js) under node.
@pytest.mark.parametrize(
    ("body", "previous", "expected"),
    [
        (tiny_sql(1), None, "sha1:e7422e482c1768184f243ec67ed1decb92ac8c22"),
        (
            tiny_sql(2),
            "sha1:e7422e482c1768184f243ec67ed1decb92ac8c22",
            "sha1:530e7e9a28f663eede6a340c009baf1aa9b55909",
        ),
        # JavaScript's trim strips U+FEFF but not U+001C, unlike str.strip().
        (
            "\ufeff select 1;\x1c\n",
            None,
            "sha1:32d2e1b0f640c23c951551314fcc6c91bd63daea",
        ),
    ],
)
def test_graphile_hash_matches_graphile_migrate(body, previous, expected):
    assert graphile_hash(body, previous) == expected


def test_write_tiny_chains_graphile_migrations_over_the_same_sql(tmp_path):
    layout = write_tiny(tmp_path / "w", 3)
    committed = sorted((layout.graphile / "migrations" / "committed").iterdir())
    assert [f.name for f in committed] == ["000001.sql", "000002.sql", "000003.sql"]
    assert (layout.graphile / ".gmrc").exists()
    previous = "-"
    for i, path in enumerate(committed, 1):
        first, second, blank, body = path.read_text().split("\n", 3)
        assert first == f"--! Previous: {previous}"
        assert blank == ""
        assert body == tiny_sql(i)
        previous = second.removeprefix("--! Hash: ")
        assert previous == graphile_hash(body, None if i == 1 else first[14:])


def test_read_rusage_takes_the_last_line(tmp_path):
    rusage = tmp_path / "r"
    rusage.write_text("Command exited with non-zero status 3\n9604 0.25 0.05\n")
    assert read_rusage(rusage) == (9604, pytest.approx(0.30))
    assert read_rusage(tmp_path / "absent") == (0, 0.0)


def test_parse_importtime_collects_modules_and_self_time():
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        100 |   pglast.enums\n"
        "import time:      1900 |       2000 | chainops.source.statements\n"
    )
    report = parse_importtime(stderr)
    assert report.modules == {"pglast.enums", "chainops.source.statements"}
    assert report.total_ms == pytest.approx(2.0)
    assert report.heavy() == ["pglast"]


def _result(key: str, walls: dict[str, float], rss_kb: int = 40_000) -> GroupResult:
    rows = []
    for tool, wall in walls.items():
        samples = [Sample(wall, rss_kb, 0)] * 5
        rows.append(Row(tool, summarise(samples), samples=samples))
    return GroupResult(Group(key, key, (), PSQL_TX), rows, 0.5, 0.7)


def test_targets_table_judges_ratios_and_memory():
    big = 50 << 20
    results = [
        _result(
            "apply-1000",
            {"chainops migrate": 2.3, "dbmate migrate": 4.2, PSQL_TX: 2.1},
        ),
        _result("big", {"chainops migrate": 7.0, PSQL_TX: 6.0}, rss_kb=200 * 1024),
    ]
    table = "\n".join(targets_table(results, big))
    assert "| apply 1000: at or below dbmate | 0.55x" in table
    assert "| apply 100: at or below dbmate | not measured | n/a |" in table
    assert "1.10x (2,300 ms vs 2,100 ms) | ✓ met |" in table
    assert "| big: wall ≤ 1.2x psql -1 | 1.17x" in table
    assert "| 200.0 MB | ✗ not met |" in table
    assert "| verify 10,000 files < 0.5 s | not measured | n/a |" in table


def test_medians_table_shows_a_missing_peer_with_its_reason():
    result = _result("apply-100", {PSQL_TX: 0.5})
    result.rows.append(
        Row("yoyo apply", note="missing: pip install failed: no network")
    )
    table = "\n".join(medians_table([result]))
    assert "| yoyo apply | missing: pip install failed: no network |" in table
    assert "| 500 ms | 500 ms to 500 ms | reference |" in table


def test_setup_graphile_says_why_when_node_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr("bench.peers.shutil.which", lambda name: None)
    peer = setup_graphile(tmp_path)
    assert (peer.command, peer.missing) == ((), "node is not installed")
