"""Reading and repositioning the consumer group's offsets on the orders topic."""

from __future__ import annotations

from typing import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from app.producing import bootstrap_servers


class OffsetsError(RuntimeError):
    """The requested repositioning cannot be done; the message says why."""


async def _consumer(broker_url: str, group: str | None = None) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url),
                                group_id=group, enable_auto_commit=False)
    await consumer.start()
    return consumer


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic)
    if not parts:
        raise OffsetsError(f"topic {topic!r} does not exist")
    return [TopicPartition(topic, p) for p in sorted(parts)]


async def log_bounds(broker_url: str, topic: str) -> dict[int, tuple[int, int]]:
    """Per partition: (earliest offset, end offset)."""
    consumer = await _consumer(broker_url)
    try:
        tps = await partitions_of(consumer, topic)
        start = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        return {tp.partition: (start[tp], end[tp]) for tp in tps}
    finally:
        await consumer.stop()


async def offsets_for_time(broker_url: str, topic: str, epoch_ms: int) -> dict[int, int]:
    """Per partition: the first offset whose record timestamp is >= ``epoch_ms`` (else end)."""
    consumer = await _consumer(broker_url)
    try:
        tps = await partitions_of(consumer, topic)
        found = await consumer.offsets_for_times({tp: epoch_ms for tp in tps})
        end = await consumer.end_offsets(tps)
        return {tp.partition: (found[tp].offset if found[tp] is not None else end[tp])
                for tp in tps}
    finally:
        await consumer.stop()


async def committed_offsets(broker_url: str, group: str, topic: str) -> dict[int, int | None]:
    consumer = await _consumer(broker_url, group)
    try:
        tps = await partitions_of(consumer, topic)
        return {tp.partition: await consumer.committed(tp) for tp in tps}
    finally:
        await consumer.stop()


async def active_members(broker_url: str, group: str) -> int:
    """How many consumers are currently members of ``group``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker_url))
    await admin.start()
    try:
        response = (await admin.describe_consumer_groups([group]))[0]
        # DescribeGroupsResponse: groups = [(error, group, state, protocol_type, protocol,
        # members), ...]
        return sum(len(g[5]) for g in response.groups if g[1] == group)
    finally:
        await admin.close()


async def commit_offsets(broker_url: str, group: str, topic: str,
                         offsets: Mapping[int, int]) -> None:
    """Set the group's committed offsets on ``topic`` in one commit (all or nothing)."""
    consumer = await _consumer(broker_url, group)
    try:
        tps = {tp.partition: tp for tp in await partitions_of(consumer, topic)}
        unknown = set(offsets) - set(tps)
        if unknown:
            raise OffsetsError(f"topic {topic!r} has no partition {sorted(unknown)}")
        consumer.assign(list(tps.values()))
        await consumer.commit({tps[p]: OffsetAndMetadata(o, "orderstats replay")
                               for p, o in offsets.items()})
    finally:
        await consumer.stop()
