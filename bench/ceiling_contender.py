"""Ceiling: a plain aiokafka consumer, batched getmany, orjson, a dict. No state store.

The practical limit for Python on this broker: what any Python stream job pays just to
read and decode the events and fold them into windows (orders, revenue, items). It commits
its positions to its group like the others (every second, and at once when it has caught up
with the log end), so its timed window ends the same way. Same CLI as the other contenders.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.contender import (ContenderArgs, items_of, on_release, start_watchdog,
                             write_result)

COMMIT_EVERY_S = 1.0


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


def _at_end(position: int, highwater: int | None) -> bool:
    """Whether a partition is read up to its last fetched highwater (None: not fetched yet)."""
    return highwater is not None and position >= highwater


async def run(args: ContenderArgs) -> None:
    # Manual assignment from the beginning: no group membership, only the group's offsets.
    consumer = AIOKafkaConsumer(bootstrap_servers=args.broker, group_id=args.group,
                                enable_auto_commit=False,
                                max_partition_fetch_bytes=16 * 1024 * 1024,
                                fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    tps = [TopicPartition(args.topic, p) for p in sorted(
        consumer.partitions_for_topic(args.topic) or await _partitions(consumer, args.topic))]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    released = asyncio.Event()
    loop = asyncio.get_running_loop()
    on_release(lambda: loop.call_soon_threadsafe(released.set))
    windows: dict[tuple[str, int], list[int]] = {}
    positions: dict[TopicPartition, int] = {}
    seen = 0
    first = done = 0.0
    last_commit = time.monotonic()
    dirty = False
    parse = datetime.fromisoformat
    while not released.is_set():
        batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
        for tp, records in batches.items():
            if not first:
                first = time.time()
            for record in records:
                doc = orjson.loads(record.value)
                start = int(parse(doc["created_at"]).timestamp()) // 60 * 60
                items = items_of(doc["items"])
                w = windows.get((doc["store_id"], start))
                if w is None:
                    windows[(doc["store_id"], start)] = [1, doc["total"], items]
                else:
                    w[0] += 1
                    w[1] += doc["total"]
                    w[2] += items
            seen += len(records)
            positions[tp] = records[-1].offset + 1
            dirty = True
        if seen >= args.expected and not done:
            done = time.time()
        caught_up = all(_at_end(positions.get(tp, 0), consumer.highwater(tp)) for tp in tps)
        if dirty and (caught_up or time.monotonic() - last_commit >= COMMIT_EVERY_S):
            await consumer.commit({tp: pos for tp, pos in positions.items()})
            last_commit, dirty = time.monotonic(), False
    await consumer.stop()
    write_result(args, seen, first, done, windows.items())


if __name__ == "__main__":
    arguments = ContenderArgs.parse()
    start_watchdog(arguments, "ceiling")
    asyncio.run(run(arguments))
    os._exit(0)
