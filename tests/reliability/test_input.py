"""I1-I4: hostile file names, contents, line endings and symbolic links.

Every file is accepted by the documented grammar, ignored (an editor leftover or
not a `.sql` file), or refused with one line before the database is touched.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from chainops import api
from chainops.config import Settings
from chainops.errors import MigrationFileError
from chainops.source import files, statements
from tests.reliability.conftest import (
    clean_env,
    command,
    error_line,
    existing_tables,
    ledger,
    trials,
)

# --- I1: file names ---------------------------------------------------------------

LEFTOVER_ENDINGS = ("~", ".swp", ".swo", ".swx", ".tmp", ".bak", ".orig")
GRAMMAR = re.compile(r"[0-9]{3}-[A-Za-z0-9][A-Za-z0-9_.-]*\.sql")


def expected_kind(name: str) -> str:
    """The documented rule, written independently of chainops.files."""
    if (
        name.startswith(".")
        or name.endswith(LEFTOVER_ENDINGS)
        or (name.startswith("#") and name.endswith("#"))
    ):
        return "ignored"
    end = len(name)  # ".sql" followed by stray spaces or control bytes still counts
    while end and (name[end - 1].isspace() or not name[end - 1].isprintable()):
        end -= 1
    if not name[:end].lower().endswith(".sql"):
        return "ignored"
    if GRAMMAR.fullmatch(name) and not name.startswith("000"):
        return "accepted"
    return "rejected"


def shown(text: str) -> str:
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


SLUG = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,10}", fullmatch=True)
NUMBER = st.integers(0, 6)
CONTROL = st.sampled_from([chr(c) for c in (*range(1, 32), 127, 0x85, 0x2028)])
UNICODE = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="/\x00"),
    min_size=1,
    max_size=8,
)


@st.composite
def file_name(draw) -> str:
    n, slug = draw(NUMBER), draw(SLUG)
    base = f"{n:03d}-{slug}"
    kind = draw(st.integers(0, 11))
    if kind == 0:
        return base + ".sql"
    if kind == 1:
        return base + draw(st.sampled_from([".SQL", ".Sql", ".sQl"]))
    if kind == 2:
        return draw(st.sampled_from([f"{n:04d}-{slug}.sql", f"{n}-{slug}.sql"]))
    if kind == 3:
        return f"{n:03d}-{draw(UNICODE)}.sql"
    if kind == 4:
        at = draw(st.integers(0, len(base)))
        return (
            base[:at]
            + draw(st.sampled_from([" ", "\u00a0", "\t"]))
            + base[at:]
            + ".sql"
        )
    if kind == 5:
        at = draw(st.integers(0, len(base)))
        return base[:at] + draw(CONTROL) + base[at:] + ".sql"
    if kind == 6:  # as long as a name may be: 255 bytes
        return f"{n:03d}-" + "x" * (255 - 8) + ".sql"
    if kind == 7:
        wrap = draw(
            st.sampled_from(["." + "{}", "{}~", "{}.swp", "#{}#", ".#{}", "{}.bak"])
        )
        return wrap.format(base + ".sql")
    if kind == 8:
        return base + ".sql" + draw(st.sampled_from([" ", "\n", "\r", "\x01", "\t "]))
    if kind == 9:
        digits = draw(
            st.sampled_from(["١٢٣", "\uff10\uff10\uff11", "߁߂߃", "\uff11\uff12\uff13"])
        )
        return f"{digits}-{slug}.sql"
    if kind == 10:
        return draw(st.sampled_from(["README.md", "notes.txt", "001-a.sql.txt", "x"]))
    return draw(UNICODE) + draw(st.sampled_from(["", ".sql", ".SQL"]))


def storable(name: str) -> bool:
    return name not in (".", "..") and "/" not in name and len(os.fsencode(name)) <= 255


def expected_outcome(names: list[str]) -> tuple[str | None, list[str]]:
    """(first refused path, accepted names in order), walking in discovery order."""
    seen: set[int] = set()
    accepted = []
    for name in sorted(names):
        kind = expected_kind(name)
        if kind == "ignored":
            continue
        if kind == "rejected" or int(name[:3]) in seen:
            return f"001-schema/{name}", []
        seen.add(int(name[:3]))
        accepted.append(name)
    return None, accepted


@settings(
    max_examples=trials("i1", ci=200, stress=10_000),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(names=st.lists(file_name(), min_size=1, max_size=5, unique=True))
@example(names=["001-a.sql\n"])
@example(names=["١٢٣-a.sql"])
@example(names=["001-a\nb.sql"])
@example(names=["001-a.sql", "001-b.sql"])
def test_i1_fuzzed_names_are_accepted_ignored_or_refused_in_one_line(project, names):
    names = [n for n in names if storable(n)]
    assume(names)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "001-schema"
        folder.mkdir()
        for name in names:
            (folder / name).write_text("CREATE TABLE t ();\n")
        refused, accepted = expected_outcome(names)
        settings_ = Settings(
            project_root=Path(tmp),
            migrations_dir=Path(tmp),
            database_url=project.db_url,
        )
        if refused is None:
            found = files.discover(Path(tmp))
            assert [f.filename for f in found] == accepted
            return
        with pytest.raises(MigrationFileError) as caught:
            api.apply(api.target(settings_))
        message = str(caught.value)
        assert message.startswith(shown(refused) + " "), (names, message)
        assert message.isprintable(), message  # one line, no terminal escapes
        assert project.query(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ) == [(0,)]


NASTY = [
    b"001-a\nb.sql",
    b"001-a\rb.sql",
    b"001-\x1b[31mred.sql",
    "001-\u202eevil.sql".encode(),
    b"001-\xff\xfe.sql",
    b"001-a.sql ",
    b"001-a.sql\n",
    "\uff10\uff10\uff11-wide.sql".encode(),
    b"001-" + b"x" * 247 + b".SQL",
    b"0001-a.sql",
]


@pytest.mark.parametrize("raw", NASTY, ids=[repr(n)[:30] for n in NASTY])
def test_i1_cli_refuses_hostile_name_in_one_line_and_applies_nothing(fresh, raw):
    trial = fresh.new()
    trial.write({"001-schema/002-good.sql": "CREATE TABLE good ();\n"})
    folder = os.fsencode(trial.migrations / "001-schema")
    with open(os.path.join(folder, raw), "w") as out:
        out.write("CREATE TABLE bad ();\n")
    result = trial.run("migrate", tool="chainops")
    assert result.code == 3, result.text
    line = error_line(result)
    assert line.startswith("✗ 001-schema/"), line
    assert line.isprintable(), line
    assert ledger(trial) == []
    assert existing_tables(trial) == set()


# --- I2: file contents ------------------------------------------------------------


def classify(data: bytes) -> str:
    """accepted, or the refusal message; any other exception fails the test."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "001-schema" / "001-x.sql"
        path.parent.mkdir()
        path.write_bytes(data)
        try:
            (file,) = files.discover(Path(tmp))
            statements.plan_migration(file.text, file.path)
        except MigrationFileError as err:
            return str(err)
    return "accepted"


SQLISH = st.sampled_from(
    [
        "CREATE TABLE t ();",
        "'",
        "$$",
        "$x$",
        "/*",
        "--",
        "\n",
        "\r\n",
        "\r",
        ";",
        "\\i x",
        "\x00",
        "\ufeff",
        "é",
        "E'\\''",
        '"',
        "DO $$ BEGIN END $$;",
        " ",
    ]
)


@settings(max_examples=trials("i2", ci=200, stress=5_000), deadline=None, database=None)
@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.lists(SQLISH, max_size=12).map(lambda p: "".join(p).encode()),
        st.lists(SQLISH, max_size=12).map(lambda p: "".join(p).encode("utf-16")),
    )
)
@example(data=b"\\\x01")  # a meta-command with a control character
def test_i2_fuzzed_contents_are_applied_or_refused_in_one_line(data):
    outcome = classify(data)
    if outcome != "accepted":
        assert outcome.startswith("001-schema/001-x.sql"), outcome
        assert outcome.isprintable(), outcome


CONTENTS = {
    "random bytes": (os.urandom(64) + b"\xff", "is not valid UTF-8"),
    "invalid utf-8": (b"CREATE TABLE x (\xc3\x28);\n", "is not valid UTF-8"),
    "utf-16": ("CREATE TABLE x ();\n".encode("utf-16"), "looks like UTF-16"),
    "nul": (b"CREATE TABLE x ();\n\x00\n", "NUL"),
    "empty": (b"", "is empty"),
    "blank": (b" \n\r\n\t", "is empty"),
    "comment only": (b"-- nothing yet\n/* later */\n", "no SQL statements"),
    "unterminated comment": (b"CREATE TABLE x ();\n/* never closed\n", "002-x.sql:"),
    "psql meta": (b"\\i other.sql\n", "psql meta-command"),
}
# Plain SQL is sent unparsed: the server refuses it, the file is rolled back and its
# failed attempt recorded (exit 6), with the server's message placed in the file.
SERVER_REFUSED = {
    "unterminated quote": (
        b"CREATE TABLE x ();\nINSERT INTO x VALUES ('oops);\n",
        "002-x.sql:2:23: unterminated quoted string",
    ),
    "unterminated dollar": (
        b"CREATE TABLE x ();\nDO $$ BEGIN NULL;\n",
        "002-x.sql:2:4: unterminated dollar-quoted string",
    ),
    "comment left open": (
        b"CREATE TABLE x ();\nSELECT 1 /* never closed\n",
        "002-x.sql:2:10: unterminated /* comment",
    ),
}
ACCEPTED = {
    "bom": b"\xef\xbb\xbfCREATE TABLE x (id int);\n",
    "crlf": b"CREATE TABLE x (id int);\r\nINSERT INTO x VALUES (1);\r\n",
    "cr": b"CREATE TABLE x (id int);\rINSERT INTO x VALUES (1);\r",
    "mixed": b"CREATE TABLE x\r\n(id int);\rINSERT INTO x\nVALUES (1);\r\n",
    "no final newline": b"CREATE TABLE x (id int)",
}


def migrate_after_a_good_file(fresh, data: bytes):
    """Run migrate on 001-ok.sql followed by 002-x.sql holding `data`."""
    trial = fresh.new()
    trial.write({"001-schema/001-ok.sql": "CREATE TABLE ok ();\n"})
    trial.write({"001-schema/002-x.sql": data})
    return trial, trial.run("migrate", tool="chainops")


@pytest.mark.parametrize("name", list(CONTENTS))
def test_i2_refused_content_is_one_line_and_leaves_database_untouched(fresh, name):
    data, expected = CONTENTS[name]
    trial, result = migrate_after_a_good_file(fresh, data)
    assert result.code == 3, result.text
    line = error_line(result)
    assert "001-schema/002-x.sql" in line, line
    assert expected in line, line
    # Refused before any work, or (a SQL problem) when its turn came: the file
    # left nothing behind, neither objects nor a ledger row.
    assert "x" not in existing_tables(trial)
    assert 1002 not in [r[0] for r in ledger(trial)]


@pytest.mark.parametrize("name", list(SERVER_REFUSED))
def test_i2_sql_the_server_refuses_is_rolled_back_and_recorded_as_failed(fresh, name):
    data, expected = SERVER_REFUSED[name]
    trial, result = migrate_after_a_good_file(fresh, data)
    assert result.code == 6, result.text
    line = error_line(result)
    assert expected in line, line
    assert "x" not in existing_tables(trial)
    assert (1002, "failed", 0) in ledger(trial)


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_i2_encodings_and_line_endings_apply(fresh, name):
    trial = fresh.new()
    trial.write({"001-schema/001-x.sql": ACCEPTED[name]})
    result = trial.run("migrate", tool="chainops")
    assert result.code == 0, result.text
    assert "x" in existing_tables(trial)


# A vforked child's peak includes its parent's memory until exec, so a small
# interpreter starts chainops and reports the peak of that child alone.
MEASURE = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_rss_mb(trial, *argv: str) -> tuple[int, float]:
    """Run chainops; return its exit code and its own peak resident memory in MiB."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, *command("chainops", *argv)],
        cwd=trial.root,
        env=clean_env(trial.url),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout.split()
    return int(out[0]), int(out[1]) / 1024  # ru_maxrss is in KiB on Linux


def test_i2_hundred_megabyte_file_applies_within_memory_bound(fresh):
    trial = fresh.new()
    chunk = os.urandom(1 << 19).hex()  # 1 MiB of hex: no suspect word, no newline
    path = trial.migrations / "001-schema" / "001-big.sql"
    path.parent.mkdir(parents=True)
    with path.open("w") as out:  # the server only measures each literal: fast
        out.write("CREATE TABLE big (n int);\n")
        for _ in range(100):
            out.write(f"INSERT INTO big SELECT length('{chunk}');\n")
    size = path.stat().st_size / (1 << 20)
    code, status_mb = peak_rss_mb(trial, "status")
    assert code == 0
    # Reading, checking and hashing hold the file's bytes once, never its text.
    assert status_mb <= size + 50, f"status peaked at {status_mb:.0f} MB"
    code, migrate_mb = peak_rss_mb(trial, "migrate")
    assert code == 0
    # Sending it adds what libpq holds while the message goes out: its output
    # buffer and its copy of the query text; see docs/reliability.md.
    assert migrate_mb <= 3 * size + 50, f"migrate peaked at {migrate_mb:.0f} MB"
    assert trial.query("SELECT count(*), min(n) FROM big") == [(100, len(chunk))]
    print(f"{size:.0f} MiB file: status {status_mb:.0f}, migrate {migrate_mb:.0f} MiB")


# --- I3: the hash rule ------------------------------------------------------------

LINES = st.lists(
    st.text(
        st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00"),
        max_size=20,
    ),
    min_size=1,
    max_size=6,
)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(files.normalise(data, "x.sql")).hexdigest()


@settings(max_examples=trials("i3", ci=300, stress=5_000), deadline=None, database=None)
@given(lines=LINES, trailing=st.booleans())
def test_i3_line_ending_and_bom_variants_hash_the_same(lines, trailing):
    end = "\n" if trailing else ""
    lf = ("\n".join(lines) + end).encode()
    assume(not lf.startswith(b"\xef\xbb\xbf"))
    variants = [
        lf,
        lf.replace(b"\n", b"\r\n"),
        lf.replace(b"\n", b"\r"),
        b"\xef\xbb\xbf" + lf.replace(b"\n", b"\r\n"),
        b"\xef\xbb\xbf" + lf,
    ]
    assert len({content_hash(v) for v in variants}) == 1


@settings(max_examples=trials("i3", ci=300, stress=5_000), deadline=None, database=None)
@given(lines=LINES, data=st.data())
def test_i3_any_other_change_hashes_differently(lines, data):
    text = "\n".join(lines) + "\n"
    kind = data.draw(st.sampled_from(["join", "insert", "delete", "replace", "space"]))
    at = data.draw(st.integers(0, len(text) - 1))
    if kind == "join":
        newlines = [i for i, c in enumerate(text) if c == "\n"][:-1]
        assume(newlines)
        at = data.draw(st.sampled_from(newlines))
        changed = text[:at] + text[at + 1 :]
    elif kind == "insert":
        changed = (
            text[:at]
            + data.draw(
                st.characters(
                    blacklist_categories=["Cs"], blacklist_characters="\r\x00"
                )
            )
            + text[at:]
        )
    elif kind == "delete":
        changed = text[:at] + text[at + 1 :]
    elif kind == "space":
        changed = text[:at] + " " + text[at:]
    else:
        new = data.draw(
            st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\x00")
        )
        changed = text[:at] + new + text[at + 1 :]
    # A leading BOM is not content (the rule drops it), whichever side holds it.
    assume(changed.removeprefix("\ufeff") != text.removeprefix("\ufeff"))
    assert content_hash(changed.encode()) != content_hash(text.encode())


def test_i3_verify_accepts_crlf_checkout_and_catches_joined_lines(fresh):
    trial = fresh.new()
    trial.write({"001-schema/001-a.sql": b"CREATE TABLE a (\n  id int\n);\n"})
    assert trial.run("migrate", tool="chainops").code == 0
    trial.write(
        {"001-schema/001-a.sql": b"\xef\xbb\xbfCREATE TABLE a (\r\n  id int\r\n);\r\n"}
    )
    assert trial.run("verify", tool="chainops").code == 0
    trial.write({"001-schema/001-a.sql": b"CREATE TABLE a (  id int\n);\n"})
    result = trial.run("verify", tool="chainops")
    assert result.code == 4
    assert "Hash mismatch for 001-schema/001-a.sql" in result.out


# --- I4: symbolic links -----------------------------------------------------------


def links(trial) -> dict[str, tuple[str, str]]:
    """Link name (relative to migrations/) -> (target, expected refusal or "")."""
    outside = trial.root / "outside.sql"
    outside.write_text("CREATE TABLE outside ();\n")
    return {
        "001-schema/002-inside.sql": ("001-a.sql", "is a symbolic link"),
        "001-schema/002-outside.sql": (str(outside), "is a symbolic link"),
        "001-schema/002-dangling.sql": ("nowhere.sql", "is a symbolic link"),
        "001-schema/002-loop.sql": ("002-loop.sql", "is a symbolic link"),
        "002-linked": (str(trial.migrations / "001-schema"), "is a symbolic link"),
        "top.sql": (str(outside), "is a symbolic link"),
        "001-schema/notes.txt": ("/etc/hostname", ""),
        "001-schema/.hidden.sql": (str(outside), ""),
        "notes": ("notes", ""),
    }


@pytest.mark.parametrize(
    "link",
    [
        "001-schema/002-inside.sql",
        "001-schema/002-outside.sql",
        "001-schema/002-dangling.sql",
        "001-schema/002-loop.sql",
        "002-linked",
        "top.sql",
        "001-schema/notes.txt",
        "001-schema/.hidden.sql",
        "notes",
    ],
)
def test_i4_symlinks_are_refused_in_one_line_or_ignored(fresh, link):
    trial = fresh.new()
    trial.write({"001-schema/001-a.sql": "CREATE TABLE a ();\n"})
    target, refusal = links(trial)[link]
    (trial.migrations / link).symlink_to(target)
    result = trial.run("migrate", tool="chainops")
    if refusal:
        assert result.code == 3, result.text
        line = error_line(result)
        assert line.startswith(f"✗ {link}"), line
        assert refusal in line, line
        assert ledger(trial) == []
        assert existing_tables(trial) == set()
    else:
        assert result.code == 0, result.text
        assert existing_tables(trial) == {"a"}
