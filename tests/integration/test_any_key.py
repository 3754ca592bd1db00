"""Any key, the shop's own shape, a topic that is already there: exact counts on a real broker.

Records are produced here the way other clients do it: the raw store id hashed by murmur2
(the Java client), the raw id hashed by CRC32 (librdkafka: kcat, confluent-kafka), the
JSON-encoded id, and no key at all (spread over partitions); so no record's placement
depends on this project's own producer.
"""

from __future__ import annotations

import asyncio
import random
import time
import zlib
from decimal import Decimal

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2

from app.cli.order_generator import GeneratorConfig, GroundTruth, OrderGenerator
from app.kafka.clients import bootstrap_servers
from tests.support import Deployment, assert_matches_truth, http_json, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

STYLES = ("raw-murmur2", "raw-crc32", "json", "none")


def placement(style: str, store: str, partitions: int, rng: random.Random
              ) -> tuple[bytes | None, int]:
    """(key, partition) as a producer of ``style`` would choose them."""
    if style == "none":
        return None, rng.randrange(partitions)
    key = orjson.dumps(store) if style == "json" else store.encode()
    if style == "raw-crc32":
        return key, zlib.crc32(key) % partitions
    return key, (murmur2(key) & 0x7FFFFFFF) % partitions


async def send_all(broker: str, topic: str, records: list[tuple[bytes | None, bytes, int | None]],
                   timestamps: list[int] | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker), acks="all",
                                enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k, partition=p,
                                       timestamp_ms=timestamps[i] if timestamps else None)
                   for i, (k, v, p) in enumerate(records)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def mixed_records(count: int, partitions: int, seed: int) -> tuple[list, dict]:
    gen = OrderGenerator(GeneratorConfig(stores=40, seed=seed, duplicate_share=0.02))
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    records = []
    for _key, value in gen.events(count, now - 1_200_000, 1_200_000, now):
        store = orjson.loads(value)["store_id"]
        key, partition = placement(rng.choice(STYLES), store, partitions, rng)
        records.append((key, value, partition))
    return records, gen.truth.to_json()


def test_mixed_keys_two_workers_kill_and_replay_exact(deployment: Deployment, tmp_path):
    records, truth = mixed_records(12_000, deployment.partitions, seed=3)
    first, second = records[:6_000], records[6_000:]
    asyncio.run(send_all(deployment.broker, deployment.topic, first))
    w1 = deployment.worker(1, host="127.0.0.1")
    w2 = deployment.worker(2, host="127.0.0.2")
    w1.wait_ready(180)
    w2.wait_ready(180)
    w2.kill()  # kill -9 while the first half is still being counted
    asyncio.run(send_all(deployment.broker, deployment.topic, second))
    w2 = deployment.worker(3, host="127.0.0.2")
    w2.wait_ready(180)
    for w in (w1, w2):
        assert_matches_truth(w.url, truth, timeout=180)
    _, cluster = http_json(w1.url + "/api/cluster")
    assert cluster["repartitioned"] > 0  # most records took the repartition path
    # Replay everything with the state kept: forwarded records are not counted twice.
    w1.stop()
    w2.stop()
    # A stopped worker's member can outlive its process for a moment: ask again until the
    # group is empty (run() would fail the test at the first refusal).
    wait_for(lambda: deployment.try_run("replay", "--to-earliest").returncode == 0, 120,
             interval=3, what="replay accepted once the group is empty")
    w4 = deployment.worker(4)
    w4.wait_ready(180)
    time.sleep(5)
    assert_matches_truth(w4.url, truth, timeout=120)


def test_a_shop_shape_nested_fields_epoch_ms_decimal_usd(kafka: str, tmp_path):
    dep = Deployment(kafka, tmp_path)
    env = {"ORDERSTATS_FIELD_STORE_ID": "shop.id", "ORDERSTATS_FIELD_ORDER_ID": "id",
           "ORDERSTATS_FIELD_CREATED_AT": "placed_at", "ORDERSTATS_FIELD_ITEMS": "lines",
           "ORDERSTATS_FIELD_ITEM_QTY": "quantity", "ORDERSTATS_FIELD_TOTAL": "amount.value",
           "ORDERSTATS_FIELD_CURRENCY": "amount.currency", "ORDERSTATS_TIME_FORMAT": "epoch_ms",
           "ORDERSTATS_MONEY_FORMAT": "major"}
    rng = random.Random(5)
    truth = GroundTruth(60)
    now = int(time.time() * 1000)
    records = []
    for n in range(3_000):
        shop = rng.randrange(1, 30)  # numeric shop ids, as shops have them
        created = now - rng.randrange(1_200_000)
        cents = rng.randrange(1, 50_000)
        qty = rng.randrange(1, 4)
        amount = str(Decimal(cents) / 100) if n % 2 else float(Decimal(cents) / 100)
        doc = {"id": f"ord-{n}", "shop": {"id": shop}, "placed_at": created,
               "lines": [{"quantity": qty, "name": "x"}],
               "amount": {"value": amount, "currency": "usd"}}
        truth.add(str(shop), created, cents, qty, False)
        records.append((None, orjson.dumps(doc), None))
    records.append((None, orjson.dumps({"id": "bad", "shop": {"id": 1}, "placed_at": now,
                                        "lines": [], "amount": {"value": "1.005",
                                                                "currency": "USD"}}), None))
    try:
        asyncio.run(send_all(dep.broker, dep.topic, records))
        worker = dep.worker(1, **env)
        worker.wait_ready(180)
        assert_matches_truth(worker.url, truth.to_json(), timeout=180)
        _, store = http_json(worker.url + "/api/stores/1")
        assert set(store["totals"]["revenue_by_currency"]) == {"USD"}
        wait_for(lambda: worker.metric('orderstats_events_total{outcome="invalid"}') == 1, 30,
                 what="the inexact amount dead-lettered")
    finally:
        dep.cleanup()


@pytest.mark.parametrize("existing", [3, None])
def test_the_orders_topic_that_is_already_there_decides_the_partitions(kafka, tmp_path,
                                                                         existing):
    dep = Deployment(kafka, tmp_path, partitions=5)  # ORDERSTATS_PARTITIONS=5, not used
    if existing:
        asyncio.run(create_topic(kafka, dep.topic, existing))
    records, truth = mixed_records(2_000, existing or 8, seed=9)
    # existing=None: the first produce makes the broker create the topic (8 partitions)
    asyncio.run(send_all(dep.broker, dep.topic, [(k, v, None) for k, v, _ in records]))
    try:
        worker = dep.worker(1)
        worker.wait_ready(180)
        assert_matches_truth(worker.url, truth, timeout=180)
        _, cluster = http_json(worker.url + "/api/cluster")
        assert len(cluster["partitions"]) == (existing or 8)
    finally:
        dep.cleanup()


async def create_topic(broker: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
