"""One partition's share of a batch as a named unit: planned completely, then written.

*Prepare* decodes, validates, routes (direct or forwarded to the repartition topic), dedups
and aggregates against the stored values, and touches nothing durable. *Commit* first sends
what must leave the worker (records forwarded to the repartition topic, dead letters) and
waits for the broker's acks, then writes each changed key once (one RocksDB write batch and
one changelog record per key, tables/store.py), then the partition's progress. So a record
counted as forwarded or dead-lettered is in Kafka before the progress says so, and an
exception while preparing leaves no trace.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol

from aiokafka.errors import MessageSizeTooLargeError
from faust.types import EventT

from agents.closer import WindowCloser
from agents.partition import PartitionState
from agents.retention import expired_windows
from agents.routing import KeyRouting
from app import metrics
from app.event_mapping import DEFAULT_MAPPING, EventMapping
from app.order import InvalidOrder, Order, decode_order
from tables import keys
from tables.dedup import Segment, Verdict
from tables.fence import Applied, BatchResult, apply_batch, window_keys
from tables.schema import StatsTables
from tables.values import ORDERS, SOURCES, TotalsValue, WindowValue
from tables.windows import NO_ROLLUPS, Rollups, TumblingWindows

MAX_FUTURE_MS = 7 * 86400 * 1000
# A dead letter the dead-letter topic refuses as too large (a topic made before the worker
# raised its max.message.bytes, or an orders topic allowing more) keeps this many bytes of the
# value, with the original size in the header orderstats.truncated: the worker stays up.
TRUNCATED_VALUE_BYTES = 64 * 1024

# send(topic, key, value, partition, timestamp_s, headers) -> a future of the broker's ack
Send = Callable[..., Awaitable[Any]]


class Letters(Protocol):
    """What the dead-letter topic holds (app.kafka.dlq.SentLetters)."""

    async def end(self, dlq_partition: int) -> int: ...

    async def since(self, dlq_partition: int, from_offset: int, source_partition: int
                    ) -> tuple[set[tuple[str, int]], int]: ...

    async def committed(self, group: str, topic: str, partition: int) -> int | None: ...

    async def records(self, topic: str, partition: int, start: int, end: int) -> list[Any]: ...


@dataclass
class Topics:
    """Where records leave the worker: the repartition and dead-letter topics."""

    repartition: str
    dlq: str
    # Partitions of the dead-letter topic (0: unknown, the producer picks by key). Known, a
    # partition's dead letters all go to partition p % dlq_partitions, where a restarted
    # owner finds the ones it sent before a kill (agents.partition.PartitionState.lettered).
    dlq_partitions: int = 0


@dataclass
class Plan:
    """Everything one partition's share of a batch will write, computed before writing."""

    partition: int
    through: dict[int, int]  # per source: highest offset of its events in this batch
    result: BatchResult
    state: PartitionState
    segment: Segment | None
    expired_segments: list[int]
    expired_windows: list[Any]
    watermark_ms: int
    forward: list[tuple[EventT, Order]] = field(default_factory=list)
    invalid: list[tuple[EventT, str]] = field(default_factory=list)
    publish: list[Any] = field(default_factory=list)  # closed windows (agents/closer.py)


def _always() -> bool:
    return True


class BatchUnit:
    """Prepares and commits partition batches against the tables; one per worker."""

    # False while this worker's epoch does not serve (a shadow rebuild): dead letters are
    # the serving epoch's to send; the switch hands over the rest (agents/orders.py).
    serving: Callable[[], bool] = staticmethod(_always)

    def __init__(self, tables: StatsTables, send: Send, topics: Topics,
                 windows: TumblingWindows, routing: KeyRouting,
                 mapping: EventMapping | None = None, rollups: Rollups = NO_ROLLUPS,
                 closer: WindowCloser | None = None) -> None:
        self.tables = tables
        self.closer = closer
        self.rollups = rollups
        self.send = send
        self.topics = topics
        self.windows = windows
        self.routing = routing
        self.mapping = mapping or DEFAULT_MAPPING
        self.record_time = self.mapping.time_format == "record"

    def prepare(self, partition: int, state: PartitionState,
                by_source: dict[int, list[EventT]], now_ms: int) -> Plan:
        """Decode, validate, route, dedup and aggregate; reads the tables, writes nothing."""
        cutoff = self.windows.late_cutoff_ms(now_ms)
        rollups, rollup_cutoffs = self.rollups, self.rollups.cutoffs(now_ms)
        decoded, forward, invalid = self._decode(partition, state, by_source,
                                                 now_ms + MAX_FUTURE_MS)
        accepted, duplicates, watermark = self._dedup(state, decoded)
        wkeys = list(window_keys(accepted, self.windows, cutoff, rollups, rollup_cutoffs))
        stores = list({a.order.store_id for a in accepted})
        t = self.tables
        stored_windows = {k: WindowValue.load(v) for k, v in zip(
            wkeys, t.windows.get_many(partition, [keys.window_key(*k) for k in wkeys]))}
        stored_totals = {s: TotalsValue.load(v) for s, v in zip(
            stores, t.totals.get_many(partition, stores))}
        result = apply_batch(accepted, stored_windows, stored_totals, self.windows, cutoff,
                             rollups, rollup_cutoffs)
        if by_source and all(max(e.message.offset for e in evs) <= state.durable[source]
                             for source, evs in by_source.items() if evs):
            drop_unchanged(result, stored_windows, stored_totals)
        publish = [] if self.closer is None else self.closer.prepare(
            state, result.windows, stored_windows, watermark, now_ms,
            lambda ks: t.windows.get_many(partition, [keys.window_key(*k) for k in ks]),
            any(by_source.values()))
        segment = state.dedup.seal(state.next_seq, watermark)
        expired_segments = state.dedup.expire(watermark, lambda seq: [
            tuple(e) for e in (t.dedup.get(partition, keys.dedup_segment_key(partition, seq))
                               or (0, []))[1]])
        metrics.EVENTS.labels("counted").inc(result.counted - result.late)
        metrics.EVENTS.labels("late").inc(result.late)
        metrics.EVENTS.labels("replayed").inc(result.replayed)
        metrics.EVENTS.labels("duplicate").inc(duplicates)
        metrics.EVENTS.labels("invalid").inc(len(invalid))
        mismatched = sum(1 for a in accepted if 0 <= a.order.items_value != a.order.total)
        if mismatched:
            metrics.TOTAL_MISMATCH.inc(mismatched)
        through = {source: max(e.message.offset for e in evs)
                   for source, evs in by_source.items() if evs}
        return Plan(partition, through, result, state, segment, expired_segments,
                    expired_windows(t.windows, partition, state, self.windows, cutoff,
                                    rollups, now_ms),
                    watermark, forward, invalid, publish)

    def _decode(self, partition: int, state: PartitionState, by_source: dict[int, list[EventT]],
                max_time_ms: int) -> tuple[list[Applied], list[tuple[EventT, Order]],
                                           list[tuple[EventT, str]]]:
        """Orders to count here, orders to forward, and invalid events with their reason."""
        decoded: list[Applied] = []
        forward: list[tuple[EventT, Order]] = []
        invalid: list[tuple[EventT, str]] = []
        mapping, is_direct = self.mapping, self.routing.is_direct
        for source in SOURCES:
            # At or below: handled before (a replay), in an earlier batch or earlier in this
            # one (a re-delivery within the batch), so dead-lettered or forwarded already.
            last = state.last_offsets[source]
            for event in by_source.get(source, ()):
                msg = event.message
                fresh = msg.offset > last
                if fresh:
                    last = msg.offset
                try:
                    order = decode_order(msg.value, max_time_ms, mapping,
                                         self._record_ms(msg))
                except InvalidOrder as exc:
                    if fresh:
                        invalid.append((event, str(exc)))
                    continue
                if source == ORDERS and not is_direct(msg.key, partition, order.store_id):
                    if fresh:
                        forward.append((event, order))
                    continue
                decoded.append(Applied(source, msg.offset, order))
        return decoded, forward, invalid

    def _record_ms(self, msg: Any) -> int | None:
        """The record's timestamp in ms, when the mapping takes the event time from it."""
        if not self.record_time or msg.timestamp is None:
            return None
        return round(msg.timestamp * 1000)  # Faust gives seconds as a float

    @staticmethod
    def _dedup(state: PartitionState, decoded: list[Applied]
               ) -> tuple[list[Applied], int, int]:
        """The orders to apply, the number of new duplicates, and the new watermark."""
        state.dedup.prefetch((a.order.store_id, a.order.order_id) for a in decoded)
        accepted: list[Applied] = []
        duplicates = 0
        watermark = state.watermark_ms
        check = state.dedup.check
        for applied in decoded:
            source, offset, order = applied
            if check(order.store_id, order.order_id, offset, source) is Verdict.DUPLICATE:
                duplicates += offset > state.last_offsets[source]
                continue
            accepted.append(applied)
            if order.created_at_ms > watermark:
                watermark = order.created_at_ms
        return accepted, duplicates, watermark

    async def commit(self, plan: Plan) -> None:
        """Send on (acked), then write windows, totals, dedup segments, then progress."""
        await self._send_on(plan)
        t, state, p = self.tables, plan.state, plan.partition
        await t.windows.write(p, [
            *((keys.window_key(*key), v.dump()) for key, v in plan.result.windows.items()),
            *((key, None) for key in plan.expired_windows)], wait=bool(plan.publish))
        if plan.publish and self.closer is not None:  # after the changelog's ack, see closer
            await self.closer.publish(p, state, plan.result.windows, plan.publish)
        await t.totals.write(p, ((store, v.dump()) for store, v in plan.result.totals.items()))
        dedup: list[tuple[Any, Any]] = [(keys.dedup_segment_key(p, seq), None)
                                        for seq in plan.expired_segments]
        if plan.segment is not None:
            dedup.append((keys.dedup_segment_key(p, plan.segment.seq),
                          [plan.segment.watermark_ms, plan.segment.entries]))
            state.next_seq = plan.segment.seq + 1
        await t.dedup.write(p, dedup)
        for source, through in plan.through.items():
            state.last_offsets[source] = max(state.last_offsets[source], through)
            state.committable[source] = max(state.committable.get(source, 0), through + 1)
        state.watermark_ms = plan.watermark_ms
        await t.progress.write(p, [(p, state.progress().dump())])
        when_acked([table.last_sent.get(p) for table in t.all], state, dict(plan.through))
        metrics.WINDOWS_EXPIRED.inc(len(plan.expired_windows))
        metrics.WATERMARK.labels(str(p)).set(state.watermark_ms / 1000)

    def invalid_reason(self, record: Any) -> str | None:
        """Why a record read back from the orders topic (app.kafka.dlq.DeadLetter) is
        invalid, or None (the same decoding as a batch's)."""
        record_ms = record.timestamp_ms if self.record_time else None
        try:
            decode_order(record.value, int(time.time() * 1000) + MAX_FUTURE_MS, self.mapping,
                         record_ms)
        except InvalidOrder as exc:
            return str(exc)
        return None

    async def send_letters(self, letters: list[tuple[Any, str]], dlq_partition: int | None
                           ) -> list[Any]:
        """Dead-letter ``(record, reason)`` pairs; the acks' metadata."""
        return [m for m in await asyncio.gather(
            *(self._dead_letter(msg, reason, dlq_partition) for msg, reason in letters))
            if m is not None]

    async def _send_on(self, plan: Plan) -> None:
        """Forward misrouted orders and dead-letter invalid events; wait for the acks."""
        if plan.invalid and not self.serving():
            plan.state.letters_deferred = True
            plan.invalid = []
        if not plan.forward and not plan.invalid:
            return
        acks = []
        for event, order in plan.forward:
            msg = event.message
            acks.append(await self.send(
                self.topics.repartition, self.routing.key(order.store_id), msg.value,
                self.routing.partition(order.store_id), msg.timestamp,
                [*(msg.headers or ()), *source_headers(msg)]))
        lettered = plan.state.lettered or ()
        dlq_partition = (plan.partition % self.topics.dlq_partitions
                         if self.topics.dlq_partitions else None)
        letters = []
        for event, reason in plan.invalid:
            msg = event.message
            if (msg.topic, msg.offset) in lettered:
                continue  # sent before a kill, its progress lost: not twice
            letters.append(self._dead_letter(msg, reason, dlq_partition))
        await asyncio.gather(*acks)
        sent = [m for m in await asyncio.gather(*letters) if m is not None]
        if sent and dlq_partition is not None:
            plan.state.dlq_next = max(plan.state.dlq_next, max(m.offset for m in sent) + 1)
        metrics.REPARTITIONED.inc(len(plan.forward))
        if plan.invalid:
            for cls, n in collections.Counter(
                    metrics.reason_class(reason) for _e, reason in plan.invalid).items():
                metrics.DEAD_LETTERS.labels(cls).inc(n)


    async def _dead_letter(self, msg: Any, reason: str, partition: int | None) -> Any:
        """Send one dead letter and wait for its ack (returned: the record's metadata); cut
        its value if the topic refuses the size, rather than stopping the worker on one
        hostile event."""
        headers = [*(msg.headers or ()),  # the producer's own, kept
                   ("orderstats.reason", reason.encode()), *source_headers(msg)]
        try:
            return await (await self.send(self.topics.dlq, msg.key, msg.value, partition, None,
                                          headers))
        except Exception as exc:  # faust wraps the client's error: look at the causes
            if not _too_large(exc) or msg.value is None:
                raise
            headers.append(("orderstats.truncated", str(len(msg.value)).encode()))
            return await (await self.send(self.topics.dlq, msg.key,
                                          msg.value[:TRUNCATED_VALUE_BYTES], partition, None,
                                          headers))


def drop_unchanged(result: Any, stored_windows: dict, stored_totals: dict) -> None:
    """Leave out of the writes the keys a batch did not change. Only for a batch wholly at or
    below the partition's durable offsets (a replay of what was written and acknowledged):
    there rewriting an unchanged key re-sends nothing a crash could have lost, and only
    costs a RocksDB write and a changelog record per key and batch."""
    for key in [k for k, v in result.windows.items() if v == stored_windows.get(k)]:
        del result.windows[key]
    for key in [k for k, v in result.totals.items() if v == stored_totals.get(k)]:
        del result.totals[key]


def when_acked(futures: list[Any], state: PartitionState, through: dict[int, int]) -> None:
    """Once the last changelog record of every table of the partition is acknowledged,
    every write of this batch is durable: its offsets join ``state.durable`` (kept in a
    later batch's progress record)."""
    pending = [f for f in futures if f is not None]
    if not pending or not through:
        return

    def done(fut: Any) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        for source, offset in through.items():
            state.durable[source] = max(state.durable[source], offset)

    asyncio.gather(*pending).add_done_callback(done)


def _too_large(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, MessageSizeTooLargeError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def source_headers(msg: Any) -> list[tuple[str, bytes]]:
    """Where a record came from, for tracing it through the repartition or dead-letter topic."""
    return [("orderstats.source.topic", msg.topic.encode()),
            ("orderstats.source.partition", str(msg.partition).encode()),
            ("orderstats.source.offset", str(msg.offset).encode())]
