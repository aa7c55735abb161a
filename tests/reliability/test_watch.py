"""C4: two dev watchers and manual `inv migrate` runs while files are being saved."""

from __future__ import annotations

import random
import signal
import threading
import time

from tests.reliability.conftest import (
    COUNTER,
    advisory_locks,
    counter_rows,
    finish,
    kill_quietly,
    ledger,
    table_file,
    trials,
    wait_for,
)

FILES = 12


def save(path, text: str, rng: random.Random, in_place: bool) -> None:
    """Save like an editor: atomically, or in place in two writes.

    Only the watchers wait for a file to settle; a manual migrate reads what is on
    disk, so in-place saves happen only while no manual run is alive.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not in_place or rng.random() < 0.5:
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(text)
        temporary.replace(path)
        return
    with path.open("w") as out:
        half = len(text) // 2
        out.write(text[:half])
        out.flush()
        time.sleep(rng.uniform(0, 0.05))
        out.write(text[half:])


def pump(stream, sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


def applied(trial) -> int:
    return len([r for r in ledger(trial) if r[1] == "completed"])


def test_c4_watchers_and_manual_migrate_apply_each_file_once(fresh, seed):
    for trial_no in range(trials("c4", ci=1, stress=10)):
        rng = random.Random(f"{seed}-{trial_no}")
        why = f"C4 seed {seed} trial {trial_no}"
        trial = fresh.new()
        trial.write({"001-schema/001-m1.sql": COUNTER + table_file(1, 0)})
        assert trial.run("migrate").code == 0, why
        watchers = [trial.spawn("watch", tool="chainops") for _ in range(2)]
        outputs: list[list[str]] = [[], []]
        readers = [
            threading.Thread(target=pump, args=(w.stdout, out))
            for w, out in zip(watchers, outputs, strict=True)
        ]
        for reader in readers:
            reader.start()
        manual = []
        try:
            wait_for(
                lambda o=outputs: all(
                    any("○ watching" in ln for ln in out) for out in o
                ),
                30,
                "both watchers",
            )
            for i in range(2, FILES + 1):
                # Some files take a while, so later saves land during a migration.
                pause = 0.8 if i % 4 == 0 else rng.uniform(0, 0.05)
                save(
                    trial.migrations / f"001-schema/{i:03d}-m{i}.sql",
                    table_file(i, pause),
                    rng,
                    in_place=all(p.poll() is not None for p in manual),
                )
                if rng.random() < 0.3:
                    manual.append(trial.spawn("migrate"))
                time.sleep(rng.uniform(0, 0.4))
            manual.append(trial.spawn("migrate"))
            done = wait_for(
                lambda t=trial: applied(t) == FILES, 60, "every file to be applied"
            )
            assert done, why
            for proc in manual:
                result = finish(proc)
                assert result.code == 0, f"{why}: {result.text}"
        finally:
            for proc in manual:
                kill_quietly(proc)
            errors = []
            for watcher in watchers:
                watcher.send_signal(signal.SIGINT)
            for watcher, reader in zip(watchers, readers, strict=True):
                watcher.wait(timeout=30)
                reader.join()  # it read stdout to the end
                errors.append(watcher.stderr.read())
                watcher.stdout.close()
                watcher.stderr.close()
        text = "".join(ln for out in outputs for ln in out) + "".join(errors)
        assert "Traceback" not in text, f"{why}\n{text}"
        assert "✗" not in text, f"{why}\n{text}"
        rows = ledger(trial)
        assert [r[0] for r in rows] == [1000 + i for i in range(1, FILES + 1)], why
        assert {r[1] for r in rows} == {"completed"}, why
        counted = counter_rows(trial)
        assert sorted(counted) == [f"t_{i:03d}" for i in range(1, FILES + 1)], why
        history = trial.query(
            "SELECT migration_number, count(*) FROM blockchain_migrations_history"
            " GROUP BY 1 HAVING count(*) > 1"
        )
        assert history == [], f"{why}: attempts recorded twice {history}"
        assert trial.run("migrate.verify").code == 0, why
        assert advisory_locks(trial) == 0, why
        fresh.drop(trial)
