"""Reading the dead-letter topic, and the ledger of what ``orderstats dlq redrive`` sent back.

A dead letter is the original record (key, value) with the headers ``orderstats.reason``
and ``orderstats.source.{topic,partition,offset}`` (agents/batch.py). Its *origin* is that
source record, ``topic/partition/offset``: the one identity that stays the same however
often the dead letter is read, and also if the same source record was ever dead-lettered
twice.

The ledger is the compacted topic ``APP_ID-dlq-redriven``, one record per redriven origin
(key: the origin, value: where it went). Redrive writes a ledger record only after the
orders topic acknowledged the redriven order, and skips every origin the ledger already
holds, so running it twice sends nothing twice. A crash between the two writes can leave
one order sent without its ledger record; the next run sends it again, and the workers
count it once (same order id, within ORDERSTATS_DEDUP_HORIZON_S).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import AsyncIterator, Callable

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition

from app.kafka.clients import Connection, consumer
from app.kafka.offsets import committed_offsets
from app.kafka.topics import ensure_topic, partition_ids

REASON = "orderstats.reason"
SOURCE = "orderstats.source."
REDRIVE = "orderstats.redrive."


def ledger_topic(app_id: str) -> str:
    return f"{app_id}-dlq-redriven"


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode("utf-8", "replace") if v is not None else None
        return None

    @property
    def reason(self) -> str:
        return self.header(REASON) or "(no reason header)"

    @property
    def source_partition(self) -> str:
        return self.header(SOURCE + "partition") or "?"

    @property
    def origin(self) -> str:
        """``topic/partition/offset`` of the source record (or of this dead letter, if the
        headers do not say)."""
        topic, part, off = (self.header(SOURCE + n) for n in ("topic", "partition", "offset"))
        if topic and part and off:
            return f"{topic}/{part}/{off}"
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def where(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    def redrive_headers(self, now_ms: int) -> list[tuple[str, bytes]]:
        """Where a redriven order came from: the dead letter, its origin and its reason."""
        out = [(REDRIVE + "dlq", self.where.encode()), (REDRIVE + "origin", self.origin.encode()),
               (REDRIVE + "reason", self.reason.encode()),
               (REDRIVE + "at", str(now_ms).encode())]
        # The producer's own headers travel on; the DLQ's bookkeeping ones do not.
        return [(k, v) for k, v in self.headers
                if k != REASON and not k.startswith(SOURCE)] + out


async def count_range(conn: Connection, topic: str, since_ms: int | None = None
                      ) -> dict[int, tuple[int, int]]:
    """Per partition: (first offset to read, end offset) of ``topic`` (empty: no topic)."""
    parts = await partition_ids(conn, topic)
    if not parts:
        return {}
    tps = [TopicPartition(topic, p) for p in parts]
    async with consumer(conn) as client:
        start = await client.beginning_offsets(tps)
        end = await client.end_offsets(tps)
        if since_ms is not None:
            found = await client.offsets_for_times({tp: since_ms for tp in tps})
            start = {tp: (found[tp].offset if found[tp] is not None else end[tp]) for tp in tps}
    return {tp.partition: (start[tp], end[tp]) for tp in tps}


async def read_topic(conn: Connection, topic: str, ranges: dict[int, tuple[int, int]],
                     progress: Callable[[int], None] = lambda n: None
                     ) -> AsyncIterator[DeadLetter]:
    """Every record of ``topic`` in ``ranges`` (per partition [start, end)), oldest first per
    partition; ``progress(n)`` after each fetch of ``n`` offsets."""
    todo = {p: r for p, r in ranges.items() if r[0] < r[1]}
    if not todo:
        return
    async with consumer(conn, auto_offset_reset="earliest") as client:
        tps = {p: TopicPartition(topic, p) for p in todo}
        client.assign(list(tps.values()))
        for p, (start, _end) in todo.items():
            client.seek(tps[p], start)
        idle = 0
        while todo and idle < 5:  # 5 empty fetches in a row: nothing more (control records)
            batch = await client.getmany(*[tps[p] for p in todo], timeout_ms=2000)
            idle = 0 if batch else idle + 1
            for tp, records in batch.items():
                end = todo.get(tp.partition, (0, 0))[1]
                for r in records:
                    if r.offset >= end:
                        break
                    yield DeadLetter(topic, tp.partition, r.offset, r.timestamp, r.key,
                                     r.value, tuple(r.headers or ()))
            for p in list(todo):
                pos = await client.position(tps[p])
                before = todo[p][0]
                if pos > before:
                    progress(min(pos, todo[p][1]) - before)
                    todo[p] = (pos, todo[p][1])
                if pos >= todo[p][1]:
                    del todo[p]


async def read_ledger(conn: Connection, app_id: str) -> dict[str, bytes]:
    """origin -> where it was redriven to, for every origin redriven so far."""
    topic = ledger_topic(app_id)
    ranges = await count_range(conn, topic)
    out: dict[str, bytes] = {}
    async for r in read_topic(conn, topic, ranges):
        if r.key is not None:
            out[r.key.decode()] = r.value or b""
    return out


async def ensure_ledger(conn: Connection, app_id: str) -> str:
    topic = ledger_topic(app_id)
    await ensure_topic(conn, topic, 1, {"cleanup.policy": "compact"})
    return topic


async def record_redriven(client: AIOKafkaProducer, app_id: str,
                          done: list[tuple[DeadLetter, str]]) -> None:
    """Ledger records for dead letters whose redriven order the broker acknowledged."""
    now = int(time.time() * 1000)
    futures = [await client.send(ledger_topic(app_id), key=dl.origin.encode(),
                                 value=orjson.dumps({"to": to, "dlq": dl.where, "at": now}))
               for dl, to in done]
    for fut in futures:
        await fut


class SentLetters:
    """Which source records already have a dead letter past a known point of the dead-letter
    topic: a worker killed between a dead letter's ack and its batch's progress re-reads
    those records after the restart, and must not send their dead letters twice."""

    def __init__(self, conn: Connection, dlq_topic: str) -> None:
        self.conn = conn
        self.topic = dlq_topic

    async def end(self, dlq_partition: int) -> int:
        """The dead-letter partition's end offset now (where a new partition starts from)."""
        async with consumer(self.conn) as client:
            tp = TopicPartition(self.topic, dlq_partition)
            return (await client.end_offsets([tp]))[tp]

    async def since(self, dlq_partition: int, from_offset: int, source_partition: int
                    ) -> tuple[set[tuple[str, int]], int]:
        """(source topic, offset) of the dead letters of ``source_partition`` in
        ``dlq_partition`` from ``from_offset`` (-1: from its start) to its end, and that
        end offset."""
        ranges = await count_range(self.conn, self.topic)
        start, end = ranges.get(dlq_partition, (0, 0))
        start = max(start, from_offset)
        sent: set[tuple[str, int]] = set()
        async for letter in read_topic(self.conn, self.topic, {dlq_partition: (start, end)}):
            if letter.source_partition == str(source_partition):
                topic, offset = letter.header(SOURCE + "topic"), letter.header(SOURCE + "offset")
                if topic and offset and offset.isdigit():
                    sent.add((topic, int(offset)))
        return sent, end

    async def committed(self, group: str, topic: str, partition: int) -> int | None:
        """The committed offset of ``group`` on one partition (None: none)."""
        return (await committed_offsets(self.conn, group, topic)).get(partition)

    async def records(self, topic: str, partition: int, start: int, end: int
                      ) -> list[DeadLetter]:
        """The records of one partition in [start, end) (a bounded range)."""
        return [r async for r in read_topic(self.conn, topic, {partition: (start, end)})]
