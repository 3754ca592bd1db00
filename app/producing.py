"""Producing generated orders to Kafka, fire-and-forget with durable acks, at a steady rate."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Callable, Iterable, Mapping

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError


def bootstrap_servers(broker_url: str) -> str:
    """``kafka://h1:9092;kafka://h2:9092`` (Faust style) -> ``h1:9092,h2:9092``."""
    hosts = [part.split("://", 1)[-1].strip("/") for part in broker_url.replace(";", ",")
             .split(",") if part.strip()]
    return ",".join(hosts)


async def ensure_topic(broker_url: str, topic: str, partitions: int,
                       config: dict[str, str] | None = None) -> int:
    """Create ``topic`` with ``partitions`` unless it exists; returns its partition count."""
    return (await ensure_topics(broker_url, {topic: config}, partitions))[topic]


async def ensure_topics(broker_url: str, topics: Mapping[str, dict[str, str] | None],
                        partitions: int) -> dict[str, int]:
    """Create each topic (name -> topic config) unless it exists; returns partition counts.

    Producing to a missing topic would let the broker auto-create it with its default
    partition count, which then no longer matches the tables' changelogs.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker_url))
    await admin.start()
    try:
        counts: dict[str, int] = {}
        for topic, config in topics.items():
            try:
                await admin.create_topics([NewTopic(topic, partitions, 1,
                                                    topic_configs=config or {})])
            except TopicAlreadyExistsError:
                pass
            # A just-created topic can be described before its partitions are: ask again.
            for _ in range(100):
                described = await admin.describe_topics([topic])
                if described and described[0]["partitions"]:
                    counts[topic] = len(described[0]["partitions"])
                    break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"topic {topic} still has no partitions 10 s after creation")
        return counts
    finally:
        await admin.close()


async def produce(broker_url: str, topic: str, events: Iterable[tuple[bytes, bytes]],
                  rate: float = 0.0, progress: Callable[[int, float], None] | None = None,
                  should_stop: Callable[[], bool] = lambda: False) -> int:
    """Send ``events`` to ``topic``; ``rate`` events/s (0 = as fast as possible).

    Returns how many were acknowledged by the broker (acks=all), so a caller can trust that
    the ground truth matches what is in the topic.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url), acks="all",
                                linger_ms=5, max_batch_size=256 * 1024,
                                enable_idempotence=True)
    await producer.start()
    sent = 0
    started = time.monotonic()
    last_report = started
    pending: list[asyncio.Future] = []
    try:
        for key, value in events:
            if should_stop():
                break
            pending.append(await producer.send(topic, value=value, key=key))
            sent += 1
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0.005:
                    await asyncio.sleep(ahead)
            now = time.monotonic()
            if progress is not None and now - last_report >= 2.0:
                progress(sent, now - started)
                last_report = now
        await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def print_progress(sent: int, elapsed: float) -> None:
    print(f"  produced {sent:,} orders in {elapsed:.1f}s ({sent / elapsed:,.0f}/s)",
          file=sys.stderr, flush=True)
