"""orderstats replay on the real broker: reposition with state kept, rebuild, bad input."""

from __future__ import annotations

import subprocess
import time

import pytest

from app.timefmt import format_iso_ms
from tests.support import (ORDERSTATS, Deployment, assert_matches_truth, http_json,
                           merge_truths, wait_for)

pytestmark = pytest.mark.kafka

BATCH = ("--count", "8000", "--stores", "40", "--rate", "0", "--duplicates", "0.02",
         "--invalid", "0.01")


def replay(dep: Deployment, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ORDERSTATS, "replay", *args], env=dep.env, capture_output=True,
                          text=True, timeout=120)


def test_replay_with_state_kept_changes_nothing_and_rebuild_recomputes(deployment, tmp_path):
    truth = deployment.generate(tmp_path / "t.json", *BATCH, "--span", "1800")
    worker = deployment.worker()
    worker.wait_ready()
    assert_matches_truth(worker.url, truth)

    refused = replay(deployment, "--to-earliest")
    assert refused.returncode == 2 and "are running; stop them first" in refused.stderr
    assert worker.stop() == 0

    dry = replay(deployment, "--to-earliest", "--dry-run")
    assert dry.returncode == 0 and "dry run: nothing changed" in dry.stdout
    kept = replay(deployment, "--to-earliest")
    assert kept.returncode == 0, kept.stderr
    worker = deployment.worker()
    worker.wait_ready()
    wait_for(lambda: worker.processed() >= 8000, 60, what="the re-read")
    assert_matches_truth(worker.url, truth, timeout=20)
    assert worker.stop() == 0

    rebuilt = replay(deployment, "--to-earliest", "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "epoch 2 is current" in rebuilt.stdout
    worker = deployment.worker()
    worker.wait_ready()
    assert_matches_truth(worker.url, truth)
    assert worker.stop() == 0


def test_rebuild_from_a_datetime_discards_the_state_built_before(deployment, tmp_path):
    a = deployment.generate(tmp_path / "a.json", *BATCH, "--span", "7200", "--stores", "50",
                            "--seed", "1")
    time.sleep(1.5)
    boundary = format_iso_ms(int(time.time() * 1000))
    time.sleep(1.5)
    b = deployment.generate(tmp_path / "b.json", *BATCH, "--span", "1200", "--seed", "2")
    worker = deployment.worker()
    worker.wait_ready()
    both = merge_truths(a, b)
    assert_matches_truth(worker.url, both)  # the state holds batch a and batch b
    assert worker.stop() == 0
    only_a = set(a["stores"]) - set(b["stores"])
    shared = sorted(set(a["stores"]) & set(b["stores"]))
    assert only_a and shared  # a over 50 stores, b over 40: both kinds exist
    old_windows = {s: set(a["stores"][s]["windows"]) - set(b["stores"][s]["windows"])
                   for s in shared}
    assert any(old_windows.values())

    rebuilt = replay(deployment, "--to-datetime", boundary, "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    worker = deployment.worker()
    worker.wait_ready()
    # Exactly batch b: compare() also fails on any store the API knows and b does not, and
    # on any window or total that still holds batch a's orders.
    assert_matches_truth(worker.url, b)
    for store_id in sorted(only_a):  # gone, not zeroed
        assert http_json(f"{worker.url}/api/stores/{store_id}")[0] == 404, store_id
    for store_id in shared:
        _, body = http_json(f"{worker.url}/api/stores/{store_id}?limit=10000")
        assert body["totals"]["orders"] == b["stores"][store_id]["totals"]["orders"] \
            < both["stores"][store_id]["totals"]["orders"]
        assert not old_windows[store_id] & {w["start"] for w in body["windows"]}
    assert worker.stop() == 0


@pytest.mark.parametrize("args, message", [
    ((), "choose exactly one target"),
    (("--to-earliest", "--to-latest"), "choose exactly one target"),
    (("--to-datetime", "yesterday"), "--to-datetime"),
    (("--to-datetime", "2026-11-22T12:00:00"), "no UTC offset"),
    (("--by-duration", "1 hour"), "not an ISO-8601 duration"),
    (("--to-offset", "3"), "must be PARTITION:OFFSET"),
    (("--to-offset", "99:0"), "partition 99 does not exist"),
    (("--to-offset", "0:999999"), "outside partition 0's log"),
])
def test_bad_arguments_get_a_clear_error_and_change_nothing(deployment, args, message):
    deployment.generate(deployment.tmp / "t.json", "--count", "10", "--rate", "0")
    result = replay(deployment, *args)
    assert result.returncode == 2
    assert message in result.stderr
