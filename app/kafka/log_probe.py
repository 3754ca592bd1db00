"""Asking the broker what a partition really holds, to tell a real gap from a lost delivery.

A worker applies each partition's offsets in order. When a delivered offset jumps ahead of
the next one expected, either the skipped offsets hold no records (transaction markers,
compaction, retention, or the group was repositioned by ``orderstats replay``), or records
were fetched and then dropped on the way (Faust's rebalance handling can do that). Only the
broker can tell which, so the agent asks it here before it accepts a jump.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from app.kafka.clients import Connection, make_consumer

log = logging.getLogger(__name__)

FETCH_TIMEOUT_MS = 5_000
ASK_TIMEOUT_S = 10.0  # a probe must never stall the agent: no answer counts as "unknown"


class LogProbe:
    """A group-less reader of one topic (plus the group's committed offsets), started lazily."""

    def __init__(self, conn: Connection, group: str, topic: str) -> None:
        self.conn = conn
        self.group = group
        self.topic = topic
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def _client(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            # group_id only so that committed() can ask the coordinator; the probe never
            # subscribes, so it never joins the group or takes partitions from workers.
            consumer = make_consumer(self.conn, group_id=self.group,
                                     auto_offset_reset="earliest")
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def committed(self, partition: int) -> int | None:
        """The group's committed offset for ``partition`` (None: never committed, or no answer)."""
        try:
            return await asyncio.wait_for(self._committed(partition), ASK_TIMEOUT_S)
        except (asyncio.TimeoutError, KafkaError) as exc:
            log.warning("committed offset of partition %s unknown (%r)", partition, exc)
            return None

    async def _committed(self, partition: int) -> int | None:
        async with self._lock:
            client = await self._client()
            return await client.committed(TopicPartition(self.topic, partition))

    async def first_offset(self, partition: int, from_offset: int) -> int | None:
        """Offset of the first record at or after ``from_offset`` (None: no answer in time).

        Offsets below the log start resolve to the log start (auto_offset_reset=earliest).
        """
        try:
            return await asyncio.wait_for(self._first_offset(partition, from_offset),
                                          ASK_TIMEOUT_S)
        except (asyncio.TimeoutError, KafkaError) as exc:
            log.warning("first offset of partition %s from %s unknown (%r)", partition,
                        from_offset, exc)
            return None

    async def _first_offset(self, partition: int, from_offset: int) -> int | None:
        tp = TopicPartition(self.topic, partition)
        async with self._lock:
            client = await self._client()
            client.assign([tp])
            try:
                client.seek(tp, from_offset)
                batch = await client.getmany(tp, timeout_ms=FETCH_TIMEOUT_MS, max_records=1)
            finally:
                client.unsubscribe()  # no background prefetching between probes
            records = batch.get(tp, [])
            return records[0].offset if records else None

    async def log_start(self, partition: int) -> int | None:
        """The partition's first offset still in the log (None: no answer in time)."""
        try:
            return await asyncio.wait_for(self._log_start(partition), ASK_TIMEOUT_S)
        except (asyncio.TimeoutError, KafkaError) as exc:
            log.warning("log start of partition %s unknown (%r)", partition, exc)
            return None

    async def _log_start(self, partition: int) -> int:
        tp = TopicPartition(self.topic, partition)
        async with self._lock:
            client = await self._client()
            return (await client.beginning_offsets([tp]))[tp]

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()
