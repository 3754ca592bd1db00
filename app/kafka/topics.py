"""Creating, describing and deleting topics."""

from __future__ import annotations

import asyncio
from typing import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from app.kafka.clients import Connection, admin


async def ensure_topic(conn: Connection, topic: str, partitions: int,
                       config: dict[str, str] | None = None) -> int:
    """Create ``topic`` with ``partitions`` unless it exists; returns its partition count."""
    return (await ensure_topics(conn, {topic: config}, partitions))[topic]


async def ensure_topics(conn: Connection, topics: Mapping[str, dict[str, str] | None],
                        partitions: int) -> dict[str, int]:
    """Create each topic (name -> topic config) unless it exists; returns partition counts.

    Producing to a missing topic would let the broker auto-create it with its default
    partition count, which then no longer matches the tables' changelogs.
    """
    async with admin(conn) as client:
        counts: dict[str, int] = {}
        for topic, config in topics.items():
            try:
                await client.create_topics([NewTopic(topic, partitions, conn.replication,
                                                     topic_configs=config or {})])
            except TopicAlreadyExistsError:
                pass
            counts[topic] = await _partition_count(client, topic)
        return counts


async def _partition_count(client: AIOKafkaAdminClient, topic: str) -> int:
    # A just-created topic can be described before its partitions are: ask again.
    for _ in range(100):
        described = await client.describe_topics([topic])
        if described and described[0]["partitions"]:
            return len(described[0]["partitions"])
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic} still has no partitions 10 s after creation")


async def partition_ids(conn: Connection, topic: str) -> list[int]:
    """The partitions of ``topic`` (empty: no such topic)."""
    async with admin(conn) as client:
        described = await client.describe_topics([topic])
    if not described or described[0].get("error_code"):
        return []
    return sorted(p["partition"] for p in described[0]["partitions"])


async def delete_topics(conn: Connection, topics: list[str]) -> list[str]:
    """Delete those of ``topics`` that exist; returns their names."""
    async with admin(conn) as client:
        existing = set(await client.list_topics())
        doomed = [t for t in topics if t in existing]
        if doomed:
            await client.delete_topics(doomed)
        return doomed
