"""Records deleted from the log before they were counted are reported loudly, not skipped
silently: an error line, a metric, and the gap per partition in /api/cluster."""

from __future__ import annotations

import asyncio
import re
import urllib.request

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from app.kafka.clients import Connection, bootstrap_servers
from app.kafka.offsets import log_bounds
from tests.support import Deployment, assert_matches_truth, http_json, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

BATCH = ("--count", "3000", "--stores", "30", "--rate", "0", "--span", "900")


async def delete_all_records(broker: str, topic: str) -> dict[int, int]:
    """Advance every partition's log start to its end (what retention does, at once);
    returns that end per partition."""
    bounds = await log_bounds(Connection(broker), topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker))
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(topic, p): RecordsToDelete(hi)
                                    for p, (_lo, hi) in bounds.items()})
    finally:
        await admin.close()
    return {p: hi for p, (_lo, hi) in bounds.items()}


def test_records_deleted_before_counting_are_reported(deployment: Deployment, tmp_path):
    truth = deployment.generate(tmp_path / "a.json", *BATCH, "--seed", "1")
    worker = deployment.worker()
    worker.wait_ready()
    assert_matches_truth(worker.url, truth)
    assert worker.stop() == 0
    # While the worker is down, 3000 more orders arrive and are deleted before it returns.
    counted = asyncio.run(log_bounds(Connection(deployment.broker), deployment.topic))
    deployment.generate(tmp_path / "b.json", *BATCH, "--seed", "2")
    ends = asyncio.run(delete_all_records(deployment.broker, deployment.topic))
    deleted = {p: end - counted[p][1] for p, end in ends.items()}  # never counted
    later = deployment.generate(tmp_path / "c.json", *BATCH, "--seed", "3")
    worker = deployment.worker(2)
    worker.wait_ready()
    wait_for(lambda: worker.metric("orderstats_lost_offsets_total") >= 3000, 60,
             what="the loss reported")
    assert worker.metric("orderstats_lost_offsets_total") == 3000
    assert_matches_truth(worker.url, merged(truth, later))  # the deleted batch is missing
    _, cluster = http_json(worker.url + "/api/cluster")
    assert sum(e["lost_offsets"] for e in cluster["partitions"].values()) == 3000
    # The gap per partition: in /api/cluster and in the metric's partition label.
    assert {int(p): e["lost_offsets"] for p, e in cluster["partitions"].items()} == deleted
    assert lost_by_partition(worker.url) == {p: n for p, n in deleted.items() if n}
    log = worker.log_path.read_text()
    assert "deleted by the topic's retention" in log and "ERROR" in log


def lost_by_partition(url: str) -> dict[int, float]:
    """orderstats_lost_offsets_total's samples by their partition label."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[int, float] = {}
    for line in text.splitlines():
        if line.startswith("orderstats_lost_offsets_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
            out[int(labels["partition"])] = float(line.rsplit(" ", 1)[1])
    return out


def merged(a: dict, b: dict) -> dict:
    """The truth of two batches together."""
    stores: dict = {}
    for truth in (a, b):
        for store, s in truth["stores"].items():
            m = stores.setdefault(store, {"totals": dict.fromkeys(s["totals"], 0),
                                          "windows": {}})
            for k, v in s["totals"].items():
                m["totals"][k] += v
            for start, w in s["windows"].items():
                mw = m["windows"].setdefault(start, dict.fromkeys(w, 0))
                for k, v in w.items():
                    mw[k] += v
    return {**a, **b, "stores": stores}  # b's freshness (watermark, offsets): the later
