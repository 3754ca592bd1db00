"""Several workers on distinct loopback addresses: scale up, kill -9, stop all and resume.

Each test ends with every store's windows and totals equal to the generator's ground truth,
asked of every worker (single-store answers are routed to the owner of the partition).
"""

from __future__ import annotations

import asyncio
import subprocess
import time

import orjson
import pytest

from app.cli.verify import compare
from tests.support import (ORDERSTATS, Deployment, assert_matches_truth, http_json,
                           wait_for)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")



def start_generator(dep: Deployment, truth, *args: str) -> subprocess.Popen:
    return subprocess.Popen([ORDERSTATS, "generate", "--truth", str(truth), "--stores", "60",
                             "--duplicates", "0.02", "--invalid", "0.01", *args],
                            env=dep.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(gen: subprocess.Popen, truth) -> dict:
    assert gen.wait(180) == 0, gen.stderr.read().decode()
    return orjson.loads(truth.read_bytes())


def all_answer_exactly(workers, truth) -> None:
    for w in workers:
        assert_matches_truth(w.url, truth, timeout=90)
    status, cluster = http_json(workers[-1].url + "/api/cluster")
    assert status == 200 and cluster["complete"], cluster
    assert {w["url"] for w in cluster["workers"]} == {w.url for w in workers}


def test_scale_up_from_one_to_three_workers_while_orders_flow(deployment, tmp_path):
    truth_path = tmp_path / "truth.json"
    first = deployment.worker(1, HOSTS[0])
    first.wait_ready()
    gen = start_generator(deployment, truth_path, "--count", "30000", "--rate", "2000")
    time.sleep(4)
    joined_at = time.monotonic()
    more = [deployment.worker(i + 1, HOSTS[i]) for i in (1, 2)]
    for w in more:
        w.wait_ready()

    def spread_over_three() -> bool:
        status, cluster = http_json(first.url + "/api/cluster", timeout=3)
        return status == 200 and cluster["complete"] and len(
            {p["active"] for p in cluster["partitions"].values()}) == 3

    wait_for(spread_over_three, 60, interval=0.2, what="partitions on three workers")
    print(f"\nrebalance: partitions spread over 3 workers {time.monotonic() - joined_at:.1f} s "
          "after two workers were started (process start included)")
    truth = finish(gen, truth_path)
    workers = [first, *more]
    all_answer_exactly(workers, truth)
    _, cluster = http_json(first.url + "/api/cluster")
    owners = {p["active"] for p in cluster["partitions"].values()}
    assert len(owners) == 3  # the partitions really are spread
    assert any(p["standby"] for p in cluster["partitions"].values())


def test_kill_9_one_of_three_workers_while_orders_flow(deployment, tmp_path):
    truth_path = tmp_path / "truth.json"
    workers = [deployment.worker(i + 1, h) for i, h in enumerate(HOSTS)]
    for w in workers:
        w.wait_ready()
    gen = start_generator(deployment, truth_path, "--count", "30000", "--rate", "2000")
    time.sleep(5)
    stores = [f"s-{i:04d}" for i in range(10)]  # the busiest stores (Zipf): all partitions
    workers[1].kill()
    killed_at = time.monotonic()

    def every_store_answerable() -> bool:
        status, body = http_json(workers[0].url + "/api/stores?limit=1", timeout=3)
        if status != 200 or not body["complete"]:
            return False
        return all(http_json(f"{workers[2].url}/api/stores/{s}?limit=1", timeout=3)[0] == 200
                   for s in stores)

    wait_for(every_store_answerable, 60, interval=0.2, what="answers after the kill")
    failover_s = time.monotonic() - killed_at
    print(f"\nfailover: every store answerable {failover_s:.1f} s after kill -9")
    truth = finish(gen, truth_path)
    all_answer_exactly([workers[0], workers[2]], truth)
    assert failover_s < 30


def test_stop_all_workers_keep_producing_and_resume(deployment, tmp_path):
    workers = [deployment.worker(i + 1, h) for i, h in enumerate(HOSTS[:2])]
    for w in workers:
        w.wait_ready()
    deployment.generate(tmp_path / "a.json", "--count", "10000", "--rate", "0", "--seed", "1",
                        "--span", "600", "--stores", "60")
    wait_for(lambda: sum(w.processed() for w in workers) >= 10000, 60, what="batch a")
    for w in workers:
        assert w.stop() == 0
    deployment.generate(tmp_path / "b.json", "--count", "10000", "--rate", "0", "--seed", "2",
                        "--span", "600", "--stores", "60")
    workers = [deployment.worker(i + 1, h) for i, h in enumerate(HOSTS[:2])]
    for w in workers:
        w.wait_ready()
    from tests.integration.test_pipeline import merge_truths

    all_answer_exactly(workers, merge_truths(tmp_path, ("a.json", "b.json")))
