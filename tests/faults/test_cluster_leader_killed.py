"""A three-broker KRaft cluster (replication factor 3, min.insync.replicas 2): the leader of
the busiest partition killed (kill -9) under load. Acknowledged orders survive on the other
replicas, the worker follows the new leaders by itself, and the counts end exact."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka.errors import KafkaError

from app.kafka.clients import Connection, admin
from app.kafka.offsets import log_bounds
from tables.schema import changelog_topic
from tests.faults.conftest import Brokers
from tests.faults.helpers import Load, assert_exact, report, timed_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def replicas_and_leaders(broker: str, topic: str) -> dict[int, tuple[int, int]]:
    """Per partition: (replica count, leader node id)."""
    async with admin(Connection(broker)) as client:
        (described,) = await client.describe_topics([topic])
    return {p["partition"]: (len(p["replicas"]), p["leader"]) for p in described["partitions"]}


def test_leader_of_the_busiest_partition_killed(kafka_cluster: Brokers, own_deployment,
                                                tmp_path):
    dep = own_deployment(kafka_cluster.url, ORDERSTATS_REPLICATION_FACTOR="3")
    worker = dep.worker(1)
    worker.wait_ready()
    pid = worker.proc.pid
    for topic in (dep.topic, f"orders-dlq-{dep.name}", changelog_topic(dep.group, "totals")):
        replicas = asyncio.run(replicas_and_leaders(dep.broker, topic))
        assert {n for n, _ in replicas.values()} == {3}, (topic, replicas)
    load = Load(dep, tmp_path / "truth.json", count=30_000, rate=1500, seed=9)
    try:
        time.sleep(5)
        bounds = asyncio.run(log_bounds(Connection(dep.broker), dep.topic))
        busiest = max(bounds, key=lambda p: bounds[p][1] - bounds[p][0])
        leader = asyncio.run(replicas_and_leaders(dep.broker, dep.topic))[busiest][1]
        kafka_cluster.kill(leader)
        killed = time.monotonic()
        print(f"\nkilled node {leader}, leader of partition {busiest} "
              f"({bounds[busiest][1]} records so far)")
        def led_elsewhere() -> bool:
            try:
                now = asyncio.run(replicas_and_leaders(dep.broker, dep.topic))[busiest][1]
            except KafkaError:  # asked the dead node: ask again
                return False
            return now not in (leader, -1)

        moved = timed_until(led_elsewhere, 60, "a new leader", interval=1)
        report("cluster leader kill -9", "partition led by another node after", moved)
        truth = load.finish()
    finally:
        load.stop()
    assert_exact(dep, [worker], truth, timeout=180)
    report("cluster leader kill -9", "exact again after the kill in", time.monotonic() - killed)
    assert worker.alive() and worker.proc.pid == pid, "the worker restarted"
