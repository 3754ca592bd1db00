"""Every hostile event lands in the dead-letter topic, as sent, with a precise reason, while
the worker stays up and the valid orders around it stay exact."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from app.kafka.clients import bootstrap_servers
from tests.hostile_corpus import Hostile, corpus
from tests.support import Deployment, assert_matches_truth, http_json, wait_for
from tests.worker_process import read_records

pytestmark = pytest.mark.kafka

CASE = "x-hostile-case"



async def produce_corpus(broker: str, topic: str, cases: list[Hostile]) -> None:
    """With a plain aiokafka producer (not the project's): every other case keyed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker), acks="all",
                                max_request_size=1_048_576)
    await producer.start()
    try:
        for i, case in enumerate(cases):
            await producer.send_and_wait(topic, case.value, key=b"s-hostile" if i % 2 else None,
                                         headers=[(CASE, case.name.encode())])
    finally:
        await producer.stop()


def test_each_hostile_event_is_dead_lettered_with_its_reason(deployment: Deployment, tmp_path):
    truth = deployment.generate(tmp_path / "truth.json", "--count", "3000", "--stores", "20",
                                "--rate", "0", "--span", "600", "--invalid", "0")
    worker = deployment.worker()
    worker.wait_ready()
    cases = corpus()
    asyncio.run(produce_corpus(deployment.broker, deployment.topic, cases))
    assert_matches_truth(worker.url, truth)
    dlq_topic = f"orders-dlq-{deployment.name}"
    wait_for(lambda: len(read_records(deployment.broker, dlq_topic)) >= len(cases),
             60, what="every hostile event in the dead-letter topic")
    letters = read_records(deployment.broker, dlq_topic)
    by_case: dict[str, list] = {}
    for rec in letters:
        by_case.setdefault(dict(rec.headers)[CASE].decode(), []).append(rec)
    assert sorted(by_case) == sorted(c.name for c in cases)
    for case in cases:
        [rec] = by_case[case.name]  # exactly once
        headers = dict(rec.headers)
        reason = headers["orderstats.reason"].decode()
        assert case.reason in reason, (case.name, reason)
        assert rec.value == case.value, case.name  # the original bytes, untouched
        assert headers["orderstats.source.topic"].decode() == deployment.topic
    assert worker.alive()
    assert http_json(worker.url + "/health")[0] == 200
    assert worker.metric('orderstats_events_total{outcome="invalid"}') == len(cases)
    assert worker.counted() == truth["valid"]
    assert worker.stop() == 0
