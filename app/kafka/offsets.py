"""Reading and repositioning the consumer group's offsets on the orders topic."""

from __future__ import annotations

from typing import Mapping

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from app.kafka.clients import Connection, admin, consumer
from app.kafka.topics import partition_ids


class OffsetsError(RuntimeError):
    """The requested repositioning cannot be done; the message says why."""


async def partitions_of(conn: Connection, topic: str) -> list[TopicPartition]:
    parts = await partition_ids(conn, topic)
    if not parts:
        raise OffsetsError(f"topic {topic!r} does not exist")
    return [TopicPartition(topic, p) for p in parts]


async def log_bounds(conn: Connection, topic: str) -> dict[int, tuple[int, int]]:
    """Per partition: (earliest offset, end offset)."""
    async with consumer(conn) as client:
        tps = await partitions_of(conn, topic)
        start = await client.beginning_offsets(tps)
        end = await client.end_offsets(tps)
        return {tp.partition: (start[tp], end[tp]) for tp in tps}


async def offsets_for_time(conn: Connection, topic: str, epoch_ms: int) -> dict[int, int]:
    """Per partition: the first offset whose record timestamp is >= ``epoch_ms`` (else end)."""
    async with consumer(conn) as client:
        tps = await partitions_of(conn, topic)
        found = await client.offsets_for_times({tp: epoch_ms for tp in tps})
        end = await client.end_offsets(tps)
        return {tp.partition: (found[tp].offset if found[tp] is not None else end[tp])
                for tp in tps}


async def committed_offsets(conn: Connection, group: str, topic: str) -> dict[int, int | None]:
    async with consumer(conn, group_id=group) as client:
        tps = await partitions_of(conn, topic)
        return {tp.partition: await client.committed(tp) for tp in tps}


async def active_members(conn: Connection, group: str) -> int:
    """How many consumers are currently members of ``group``."""
    async with admin(conn) as client:
        response = (await client.describe_consumer_groups([group]))[0]
        # DescribeGroupsResponse: groups = [(error, group, state, protocol_type, protocol,
        # members), ...]
        return sum(len(g[5]) for g in response.groups if g[1] == group)


async def commit_offsets(conn: Connection, group: str, topic: str,
                         offsets: Mapping[int, int]) -> None:
    """Set the group's committed offsets on ``topic`` in one commit (all or nothing)."""
    async with consumer(conn, group_id=group) as client:
        tps = {tp.partition: tp for tp in await partitions_of(conn, topic)}
        unknown = set(offsets) - set(tps)
        if unknown:
            raise OffsetsError(f"topic {topic!r} has no partition {sorted(unknown)}")
        client.assign(list(tps.values()))
        await client.commit({tps[p]: OffsetAndMetadata(o, "orderstats replay")
                               for p, o in offsets.items()})
