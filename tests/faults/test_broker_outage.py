"""The broker stopped for 15 s under load, then started again: the workers and the
generator carry on by themselves (no restart), and the counts end exact."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import Brokers
from tests.faults.helpers import HOSTS, Load, assert_exact, report, timed_until
from tests.support import http_json

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

OUTAGE_S = 15


def test_broker_stopped_for_15_s_under_load(private_broker: Brokers, own_deployment, tmp_path):
    dep = own_deployment(private_broker.url)
    workers = [dep.worker(i + 1, HOSTS[i]) for i in range(2)]
    for w in workers:
        w.wait_ready()
    pids = [w.proc.pid for w in workers]
    load = Load(dep, tmp_path / "truth.json", count=40_000, rate=2000, seed=11)
    try:
        time.sleep(4)
        private_broker.stop()
        stopped = time.monotonic()
        # The workers say so: not ready, with the reason, and the metric at 0.
        timed_until(lambda: all(http_json(w.url + "/ready", timeout=2)[0] == 503
                                for w in workers), 10, "503 from /ready")
        status, body = http_json(workers[0].url + "/ready")
        assert status == 503 and "cannot reach Kafka" in body["reason"], body
        assert workers[0].metric("orderstats_kafka_up") == 0
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        private_broker.start()
        back = time.monotonic()
        print(f"\nbroker stopped for {back - stopped:.1f} s (its start-up included)")
        ready_s = timed_until(lambda: all(http_json(w.url + "/ready", timeout=2)[0] == 200
                                          for w in workers), 120, "ready again")
        report("broker outage", "both workers ready again after the broker restart in", ready_s)
        truth = load.finish()
    finally:
        load.stop()
    assert [w.proc.pid for w in workers] == pids and all(w.alive() for w in workers), \
        "a worker restarted or died"
    assert truth["invalid"] > 0 and sum(s["totals"]["orders"] for s in truth["stores"].values()) > 30_000
    assert_exact(dep, workers, truth, timeout=180)
    report("broker outage", "exact again after the broker restart in", time.monotonic() - back)
    assert workers[0].metric("orderstats_kafka_up") == 1
