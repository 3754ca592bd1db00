"""End to end on the real broker: produce, process, answer exactly; survive stops and kill -9."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.kafka.clients import Connection
from app.kafka.offsets import commit_offsets, log_bounds
from tests.support import (Deployment, WorkerProcess, assert_dead_letters, assert_matches_truth,
                           http_json, merge_truths, wait_for)

pytestmark = pytest.mark.kafka

GENERATE = ("--count", "25000", "--stores", "60", "--span", "1800", "--rate", "0",
            "--duplicates", "0.02", "--invalid", "0.02", "--late", "0.01")


def reset_to_earliest(dep: Deployment) -> None:
    bounds = asyncio.run(log_bounds(Connection(dep.broker), dep.topic))
    asyncio.run(commit_offsets(Connection(dep.broker), dep.group, dep.topic,
                               {p: start for p, (start, _end) in bounds.items()}))


def test_stats_are_exact_and_survive_stop_replay_and_kill(deployment: Deployment, tmp_path):
    truth1 = deployment.generate(tmp_path / "truth1.json", *GENERATE, "--seed", "1")
    assert truth1["invalid"] > 300 and truth1["duplicates"] > 300 and truth1["late"] > 100
    worker = deployment.worker()
    worker.wait_ready()
    assert_matches_truth(worker.url, truth1)
    # Invalid events are in the dead-letter topic, byte for byte, with their own headers,
    # the reason and the source record.
    assert_dead_letters(deployment, truth1)

    status, body = http_json(worker.url + "/api/stores?sort=revenue&limit=5")
    assert status == 200 and body["complete"] and body["count"] == len(truth1["stores"])
    revenues = [s["totals"]["revenue"] for s in body["stores"]]
    assert revenues == sorted(revenues, reverse=True) and len(revenues) == 5

    check_api_contract(worker.url, truth1)

    # A clean stop exits 0; re-reading the whole topic with the state kept changes nothing.
    assert worker.stop() == 0
    reset_to_earliest(deployment)
    worker = deployment.worker(index=1)
    worker.wait_ready()
    wait_for(lambda: worker.processed() >= 25_000, 120, what="replay of the whole topic")
    assert_matches_truth(worker.url, truth1, timeout=30)
    assert worker.metric('orderstats_events_total{outcome="replayed"}') > 20_000
    assert worker.counted() == 0  # nothing counted twice
    assert_dead_letters(deployment, truth1)  # nothing dead-lettered twice

    # kill -9 while the worker is provably mid-stream, then a plain restart: it resumes from
    # the offsets it committed and the state it kept, no offset is moved by hand.
    assert worker.stop() == 0
    truth2 = deployment.generate(tmp_path / "truth2.json", *GENERATE, "--seed", "2")
    worker = deployment.worker(index=1, orderstats_batch_max=str(SLOW_BATCH),
                               orderstats_test_batch_delay_s=str(SLOW_DELAY_S))
    worker.wait_ready()
    counted_before = kill_mid_stream(worker, truth2["valid"])
    worker = deployment.worker(index=1)
    worker.wait_ready(timeout=180)
    both = merge_truths(truth1, truth2)
    assert_matches_truth(worker.url, both)
    assert_dead_letters(deployment, both)
    # Each valid order of the second batch counted once: before the kill or after it.
    assert counted_before + worker.counted() == truth2["valid"], (counted_before,
                                                                  worker.counted())
    assert worker.stop() == 0


SLOW_BATCH, SLOW_DELAY_S = 1000, 0.5  # 25 batches of 1,000 events, each after a 0.5 s pause


def kill_mid_stream(worker: WorkerProcess, valid: int) -> int:
    """kill -9 ``worker`` while the lag is > 0 and 10%-90% of ``valid`` orders are counted;
    returns how many it had counted.

    The kill lands in the pause a slowed worker takes before each batch: a batch just ended
    (the processed count moved) less than half a pause ago. There the counted metric is
    final (nothing is counted until the next batch), so it can be compared afterwards. It
    also keeps the kill out of the few milliseconds between a dead letter's ack and the
    batch's progress write, where a kill would send that dead letter again on restart (the
    dead-letter topic is at-least-once; ``orderstats dlq`` tells copies apart by origin)."""
    low, high = valid * 35 // 100, valid * 9 // 10  # well inside 10%-90%: aim for the middle
    seen = worker.processed()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        asked = time.monotonic()
        processed = worker.processed()
        if processed == seen:
            time.sleep(0.02)
            continue
        seen = processed
        counted = worker.counted()
        lag = worker.metric("orderstats_consumer_lag")
        if counted >= high:
            raise AssertionError(f"missed the middle: {counted} of {valid} counted")
        if counted > low and lag > 0 and time.monotonic() - asked < SLOW_DELAY_S / 2:
            worker.kill()
            print(f"\nkill -9 with {counted} of {valid} orders counted, lag {lag:.0f}")
            return counted
    raise AssertionError(f"no batch ended in the middle of the stream ({worker.counted()} "
                         f"of {valid} counted)")


def check_api_contract(url: str, truth: dict) -> None:
    """Shapes, the window-range route, and 4xx JSON errors for bad parameters."""
    store_id, store = max(truth["stores"].items(), key=lambda kv: len(kv[1]["windows"]))
    starts = sorted(store["windows"])
    status, body = http_json(f"{url}/api/stores/{store_id}?limit=3")
    assert status == 200
    assert set(body) == {"store_id", "window", "window_size_s", "current", "windows",
                         "current_by_window", "totals", "as_of"}
    assert set(body["current_by_window"]) == {"1h", "1d"}  # this hour, today
    assert [w["start"] for w in body["windows"]] == starts[::-1][:3]  # newest first
    assert body["as_of"]["watermark"].endswith("Z") and body["as_of"]["offsets"]
    lo, hi = starts[2], starts[7]
    status, body = http_json(f"{url}/api/stores/{store_id}/windows?from={lo}&to={hi}")
    assert status == 200
    assert [w["start"] for w in body["windows"]] == starts[2:7]  # [from, to), oldest first
    assert body["windows"][0]["orders"] == store["windows"][lo]["orders"]
    for path, code in [("/api/stores/nope", 404), ("/api/stores/s-0001?limit=x", 400),
                       ("/api/stores/s-0001?limit=100001", 400),
                       ("/api/stores?sort=name", 400), ("/api/stores?limit=0", 400),
                       (f"/api/stores/{store_id}/windows?from=yesterday&to={hi}", 400),
                       (f"/api/stores/{store_id}/windows?from={hi}&to={lo}", 400),
                       (f"/api/stores/{store_id}/windows?to={hi}", 400)]:
        status, body = http_json(url + path)
        assert status == code, (path, status, body)
        assert set(body["error"]) == {"code", "message"}, body
