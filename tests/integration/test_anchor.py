"""The anchor outside the database: what the chain alone cannot catch, a digest does."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from chainops import api, cli


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
