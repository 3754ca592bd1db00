"""The worker's connection to the broker cut for 30 s (a TCP proxy in front of the broker,
which advertises the proxy's port): /ready and orderstats_kafka_up say so, and the worker
recovers by itself, exact. The generator talks to the broker directly, so load goes on."""

from __future__ import annotations

import time

import pytest

from tests.faults.helpers import Load, assert_exact, report, timed_until
from tests.kafka_proxy import KafkaProxy
from tests.support import Deployment, http_json

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CUT_S = 30


def _reports_kafka_down(url: str) -> bool:
    status, body = http_json(url + "/ready", timeout=2)
    return status == 503 and "cannot reach Kafka" in (body or {}).get("reason", "")


def test_connection_to_the_broker_cut_for_30_s(deployment: Deployment, tmp_path):
    proxy = KafkaProxy(int(deployment.broker.rsplit(":", 1)[1])).start()
    load: Load | None = None
    try:
        worker = deployment.worker(1, ORDERSTATS_BROKER=proxy.url)
        worker.wait_ready()
        pid = worker.proc.pid
        load = Load(deployment, tmp_path / "truth.json", count=30_000, rate=800, seed=5)
        time.sleep(4)
        proxy.cut()
        cut = time.monotonic()
        # Wait for the liveness probe's verdict (a 503 with its reason), not any 503: a
        # not-ready answer without a reason would fail the assertions below.
        noticed = timed_until(lambda: _reports_kafka_down(worker.url), 15,
                              "503 from /ready naming Kafka")
        report("connection cut", "/ready 503 after the cut in", noticed)
        status, body = http_json(worker.url + "/ready")
        assert status == 503 and body["ready"] is False
        assert "cannot reach Kafka" in body["reason"] and proxy.url.split("//")[1] in body["reason"]
        assert worker.metric("orderstats_kafka_up") == 0
        time.sleep(max(0.0, CUT_S - (time.monotonic() - cut)))
        assert http_json(worker.url + "/ready")[0] == 503  # still cut: still says so
        proxy.restore()
        restored = time.monotonic()
        ready_s = timed_until(lambda: http_json(worker.url + "/ready", timeout=2)[0] == 200,
                              90, "ready again")
        report("connection cut", "/ready 200 after the connection came back in", ready_s)
        assert worker.metric("orderstats_kafka_up") == 1
        truth = load.finish()
        assert_exact(deployment, [worker], truth, timeout=180)
        report("connection cut", "exact again after the connection came back in",
               time.monotonic() - restored)
        assert worker.alive() and worker.proc.pid == pid, "the worker restarted"
        log = worker.log_path.read_text()
        assert "Kafka unreachable" in log and "Kafka reachable again" in log
    finally:
        if load is not None:
            load.stop()
        proxy.stop()
