"""The anchor outside the database: what the chain alone cannot catch, a digest does."""

from __future__ import annotations

import json
from dataclasses import replace

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from chainops import api, chain, cli
from chainops.store import catalog, ledger


def run(capsys, project, *argv: str):
    args = [*argv, "--database-url", project.db_url]
    args += ["--migrations-dir", str(project.migrations)]
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def delete_newest(project, count: int) -> None:
    """What someone with write access does to hide the newest migrations."""
    for _ in range(count):
        top = project.query("SELECT max(height) FROM blockchain_migrations")[0][0]
        number = project.query(
            "SELECT migration_number FROM blockchain_migrations WHERE height = %s",
            (top,),
        )[0][0]
        project.query("DELETE FROM blockchain_migrations WHERE height = %s", (top,))
        project.query(
            "DELETE FROM blockchain_migrations_history WHERE migration_number = %s",
            (number,),
        )


def test_verify_digest_catches_the_newest_two_blocks_deleted_with_their_history(
    project, capsys, tmp_path
):
    project.copy_examples()
    api.apply(project.target)
    code, out, _ = run(capsys, project, "digest")
    assert code == 0
    log = tmp_path / "digests.log"
    log.write_text(out)
    assert json.loads(out)["height"] == 5

    delete_newest(project, 2)

    assert run(capsys, project, "verify")[0] == 0  # the chain alone cannot tell
    code, out, _ = run(capsys, project, "verify", "--digest", str(log))
    assert code == 4
    assert "holds 3 blocks but digests.log:1 recorded 5" in out


def test_signed_digest_log_verifies_while_the_ledger_only_grows(project, tmp_path):
    key = tmp_path / "digest.pem"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    signing = project.target_with(digest_key=key)
    project.write({"001-schema/001-a.sql": "CREATE TABLE a (id int);\n"})
    api.apply(signing)
    log = tmp_path / "digests.log"
    log.write_text(api.digest_line(signing) + "\n")
    project.write({"001-schema/002-b.sql": "CREATE TABLE b (id int);\n"})
    api.apply(signing)
    with log.open("a") as out:
        out.write(api.digest_line(signing) + "\n")

    assert api.verify(signing, log).ok
    assert "signature" in log.read_text()
    assert key.read_text() not in log.read_text()


def test_a_hand_made_change_hidden_by_rewriting_the_sealed_fingerprint_is_caught(
    project, capsys, tmp_path
):
    """The fingerprint sits inside the head's hash: to hide an ALTER TABLE, the
    attacker must rewrite the fingerprint and recompute the head hash, which the
    digest taken before refuses."""
    project.copy_examples()
    api.apply(project.target)
    log = tmp_path / "digests.log"
    log.write_text(run(capsys, project, "digest")[1])
    project.query("ALTER TABLE users ADD COLUMN nickname text")
    assert run(capsys, project, "verify")[0] == 4  # drift

    with psycopg.connect(project.db_url, autocommit=True) as conn:
        live = catalog.read_snapshot(conn, "public", ledger.TABLES)
        head = ledger.read_snapshot(conn, "public").blocks[-1]
    assert head.sealed_schema == head.schema_hash is not None
    forged = replace(head, sealed_schema=catalog.fingerprint(live))
    project.query(
        "UPDATE blockchain_migrations SET schema_hash = %s, sealed_schema = %s"
        " WHERE height = %s",
        (forged.sealed_schema, forged.sealed_schema, head.height),
    )
    assert run(capsys, project, "verify")[0] == 4  # the head's hash breaks
    project.query(
        "UPDATE blockchain_migrations SET block_hash = %s WHERE height = %s",
        (chain.recompute(forged), head.height),
    )

    assert run(capsys, project, "verify")[0] == 0  # a consistent forger
    code, out, _ = run(capsys, project, "verify", "--digest", str(log))
    assert code == 4
    assert "digests.log:1" in out
