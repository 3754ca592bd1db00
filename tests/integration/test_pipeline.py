"""End to end on the real broker: produce, process, answer exactly; survive stops and kill -9."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer

from app.kafka.clients import Connection, bootstrap_servers
from app.kafka.offsets import active_members, commit_offsets, log_bounds
from tests.support import Deployment, assert_matches_truth, http_json, wait_for

pytestmark = pytest.mark.kafka

GENERATE = ("--count", "25000", "--stores", "60", "--span", "1800", "--rate", "0",
            "--duplicates", "0.02", "--invalid", "0.02", "--late", "0.01")


async def read_topic(broker: str, topic: str) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap_servers(broker),
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    records = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=3000)
            if not batch:
                return records
            for recs in batch.values():
                records.extend(recs)
    finally:
        await consumer.stop()


def reset_to_earliest(dep: Deployment) -> None:
    bounds = asyncio.run(log_bounds(Connection(dep.broker), dep.topic))
    asyncio.run(commit_offsets(Connection(dep.broker), dep.group, dep.topic,
                               {p: start for p, (start, _end) in bounds.items()}))


def test_stats_are_exact_and_survive_stop_replay_and_kill(deployment: Deployment, tmp_path):
    truth = deployment.generate(tmp_path / "truth1.json", *GENERATE, "--seed", "1")
    assert truth["invalid"] > 300 and truth["duplicates"] > 300 and truth["late"] > 100
    worker = deployment.worker()
    worker.wait_ready()
    assert_matches_truth(worker.url, truth)

    # Invalid events are in the dead-letter topic with their reason and source offset.
    dlq = asyncio.run(read_topic(deployment.broker, f"orders-dlq-{deployment.name}"))
    assert len(dlq) == truth["invalid"]
    headers = dict(dlq[0].headers)
    assert headers["orderstats.reason"]
    assert headers["orderstats.source.topic"].decode() == deployment.topic
    assert int(headers["orderstats.source.offset"]) >= 0

    status, body = http_json(worker.url + "/api/stores?sort=revenue&limit=5")
    assert status == 200 and body["complete"] and body["count"] == len(truth["stores"])
    revenues = [s["totals"]["revenue"] for s in body["stores"]]
    assert revenues == sorted(revenues, reverse=True) and len(revenues) == 5

    check_api_contract(worker.url, truth)

    # A clean stop exits 0; re-reading the whole topic with the state kept changes nothing.
    assert worker.stop() == 0
    reset_to_earliest(deployment)
    worker = deployment.worker(index=1)
    worker.wait_ready()
    wait_for(lambda: worker.processed() >= 25_000, 120, what="replay of the whole topic")
    assert_matches_truth(worker.url, truth, timeout=30)
    assert worker.metric('orderstats_events_total{outcome="replayed"}') > 20_000
    assert len(asyncio.run(read_topic(deployment.broker, f"orders-dlq-{deployment.name}"))) \
        == truth["invalid"]

    # kill -9 in the middle of processing more orders, then replay from the start again.
    assert worker.stop() == 0
    truth = deployment.generate(tmp_path / "truth2.json", *GENERATE, "--seed", "2")
    worker = deployment.worker(index=1)
    worker.wait_ready()
    wait_for(lambda: worker.processed() >= 2_000, 60, interval=0.05, what="some progress")
    worker.kill()
    # The killed member stays in the group until its session times out (10 s).
    wait_for(lambda: asyncio.run(active_members(Connection(deployment.broker), deployment.group)) == 0,
             40, what="the killed worker to leave the group")
    reset_to_earliest(deployment)
    worker = deployment.worker(index=1)
    worker.wait_ready()
    merged = merge_truths(tmp_path, ("truth1.json", "truth2.json"))
    assert_matches_truth(worker.url, merged)
    assert worker.stop() == 0


def merge_truths(tmp_path, names) -> dict:
    """Ground truth of several generator runs (different seeds share no order ids)."""
    import orjson

    out: dict = {"stores": {}}
    for name in names:
        truth = orjson.loads((tmp_path / name).read_bytes())
        for store_id, s in truth["stores"].items():
            m = out["stores"].setdefault(store_id, {"totals": dict.fromkeys(
                ("orders", "revenue", "items", "late"), 0), "windows": {}})
            for k, v in s["totals"].items():
                m["totals"][k] += v
            for start, w in s["windows"].items():
                mw = m["windows"].setdefault(start, dict.fromkeys(("orders", "revenue",
                                                                    "items"), 0))
                for k, v in w.items():
                    mw[k] += v
    return out


def check_api_contract(url: str, truth: dict) -> None:
    """Shapes, the window-range route, and 4xx JSON errors for bad parameters."""
    store_id, store = max(truth["stores"].items(), key=lambda kv: len(kv[1]["windows"]))
    starts = sorted(store["windows"])
    status, body = http_json(f"{url}/api/stores/{store_id}?limit=3")
    assert status == 200
    assert set(body) == {"store_id", "window_size_s", "current", "windows", "totals", "as_of"}
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
