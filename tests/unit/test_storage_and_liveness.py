"""A refused RocksDB write becomes one StorageError line; the Kafka probe's verdict."""

from __future__ import annotations

import asyncio

import pytest
import rocksdict

from app import metrics
from app.kafka.clients import Connection
from app.kafka.liveness import KafkaLiveness
from tables.store import StorageError, write_batch
from tests.worker_process import free_port


class FullDisk:
    def write(self, batch: object) -> None:
        raise Exception("IO error: No space left on device: While appending to file: x.log")


def test_a_refused_write_names_the_data_dir_and_the_cause():
    with pytest.raises(StorageError) as caught:
        write_batch(FullDisk(), rocksdict.WriteBatch(raw_mode=True), lambda: "/data/orderstats")
    line = str(caught.value)
    assert "/data/orderstats (ORDERSTATS_DATA_DIR)" in line and "No space left" in line
    assert "\n" not in line


def test_the_probe_reports_an_unreachable_broker_and_its_return():
    port = free_port()  # nothing listens there
    live = KafkaLiveness(Connection(f"kafka://127.0.0.1:{port}"), timeout_s=1)
    assert live.up and metrics.KAFKA_UP._value.get() == 1
    assert asyncio.run(live.check()) is False
    assert f"127.0.0.1:{port}" in live.reason and "refused" in live.reason
    assert metrics.KAFKA_UP._value.get() == 0
    live._up()  # what a successful probe records
    assert live.up and live.reason == "" and metrics.KAFKA_UP._value.get() == 1


def test_the_workers_producer_is_idempotent_outside_transactions():
    """A retried send after a lost acknowledgement must not be written twice (dead letters
    exactly once through a broker outage): the transport's producer turns idempotence on."""
    from types import SimpleNamespace

    from app.faust_ext.consumer import BatchDrainTransport
    from app.faust_ext.producer import IdempotentProducer

    assert BatchDrainTransport.Producer is IdempotentProducer
    producer = object.__new__(IdempotentProducer)
    producer.app = SimpleNamespace(in_transaction=False)
    assert producer._settings_extra() == {"acks": "all", "enable_idempotence": True}
