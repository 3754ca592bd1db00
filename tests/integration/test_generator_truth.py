"""``orderstats generate --truth`` holds exactly the events the broker acknowledged: after
--duration, SIGTERM and Ctrl-C alike (no event generated but never sent in the truth)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

import orjson
import pytest

from app.order import InvalidOrder, decode_order
from tests.support import ORDERSTATS, Deployment
from tests.worker_process import read_records

pytestmark = pytest.mark.kafka

ARGS = ("--stores", "20", "--duplicates", "0.05", "--invalid", "0.05", "--seed", "11")


def truth_of_topic(records: list) -> dict:
    """What the topic holds, counted the way GroundTruth counts."""
    orders: Counter[str] = Counter()
    seen: set[str] = set()
    invalid = duplicates = 0
    for r in records:
        try:
            order = decode_order(r.value, int(time.time() * 1000) + 7 * 86400_000)
        except InvalidOrder:
            invalid += 1
            continue
        if order.order_id in seen:
            duplicates += 1
            continue
        seen.add(order.order_id)
        orders[order.store_id] += 1
    return {"produced": len(records), "invalid": invalid, "duplicates": duplicates,
            "orders": dict(orders)}


def check(dep: Deployment, truth_file) -> dict:
    truth = orjson.loads(truth_file.read_bytes())
    got = truth_of_topic(read_records(dep.broker, dep.topic))
    assert got["produced"] > 50
    assert {k: truth[k] for k in ("produced", "invalid", "duplicates")} == \
        {k: got[k] for k in ("produced", "invalid", "duplicates")}
    assert {s: v["totals"]["orders"] for s, v in truth["stores"].items()} == got["orders"]
    return truth


def test_truth_after_duration_is_what_the_broker_took(deployment: Deployment, tmp_path):
    deployment.run("generate", "--duration", "2", "--rate", "300", "--truth",
                   str(tmp_path / "t.json"), *ARGS)
    check(deployment, tmp_path / "t.json")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_truth_after_an_interrupt_is_what_the_broker_took(deployment: Deployment, tmp_path,
                                                          sig):
    truth_file = tmp_path / "t.json"
    proc = subprocess.Popen([ORDERSTATS, "generate", "--rate", "0", "--count", "10000000",
                             "--truth", str(truth_file), *ARGS], env=deployment.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)  # started, and producing as fast as it can
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert truth_file.exists(), err
    assert "Traceback" not in err, err
    check(deployment, truth_file)
