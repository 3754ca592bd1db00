"""Ceiling: a plain aiokafka consumer, batched getmany, orjson, a dict. No state store.

The practical limit for Python on this broker: what any Python stream job pays just to
read and decode the events and fold them into windows. Same CLI as the other contenders.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.contender import ContenderArgs, write_result


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def run(args: ContenderArgs) -> None:
    # Manual assignment from the beginning: no group protocol, nothing but reading.
    consumer = AIOKafkaConsumer(bootstrap_servers=args.broker, enable_auto_commit=False,
                                max_partition_fetch_bytes=16 * 1024 * 1024,
                                fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    tps = [TopicPartition(args.topic, p) for p in sorted(
        consumer.partitions_for_topic(args.topic) or await _partitions(consumer, args.topic))]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    windows: dict[tuple[str, int], list[int]] = {}
    seen = 0
    first = 0.0
    parse = datetime.fromisoformat
    try:
        while seen < args.expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                if not first:
                    first = time.time()
                for record in records:
                    doc = orjson.loads(record.value)
                    start = int(parse(doc["created_at"]).timestamp()) // 60 * 60
                    w = windows.get((doc["store_id"], start))
                    if w is None:
                        windows[(doc["store_id"], start)] = [1, doc["total"]]
                    else:
                        w[0] += 1
                        w[1] += doc["total"]
                seen += len(records)
    finally:
        done = time.time()
        await consumer.stop()
    write_result(args, seen, first, done, windows.items())


if __name__ == "__main__":
    asyncio.run(run(ContenderArgs.parse()))
