"""The `orders` agent: decode -> validate -> dedup -> update tables (bad -> `orders-dlq`).

Events are taken in batches. Each partition's offsets are *admitted* in order first: a
jump past the next expected offset is accepted only when the broker confirms the skipped
offsets hold no records (app.log_probe); otherwise the partition is re-read from the
expected offset. Each batch is then planned completely (decode, validate, dedup, aggregate
against the stored values) and only then written: one write per changed key per batch, in
bulk per partition (tables.state.PartitionStore.write). The offsets committed to Kafka are
the ones written here (:meth:`OrderBatchProcessor.commit_offset`, used by the consumer),
not whatever Faust saw acked, and Faust flushes the changelogs before it commits. A failure
while writing stops the process; the restart replays from the committed offsets and the
fences make that exact.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Sequence

import faust
import orjson
from faust.types import TP, EventT

from app import metrics
from app.events import InvalidOrder, Order, decode_order
from app.log_probe import LogProbe
from app.settings import Settings
from tables.aggregate import Applied, BatchResult, apply_batch, window_keys
from tables.dedup import DedupIndex, Segment, Verdict
from tables.state import StatsTables
from tables.windows import is_retained, late_cutoff_ms

log = logging.getLogger(__name__)

MAX_FUTURE_MS = 7 * 86400 * 1000
SWEEP_KEYS_PER_BATCH = 5_000
SWEEP_PAUSE_S = 30.0  # between full passes over a partition's windows
REREAD_PATIENCE_S = 10.0  # a re-read that has not arrived by then is verified and sought again


@dataclass
class PartitionState:
    """What the agent keeps in memory for one assigned partition."""

    last_offset: int
    watermark_ms: int
    next_seq: int
    dedup: DedupIndex
    next_offset: int = 0  # the offset expected next in delivery order
    verified_next: int | None = None  # first record after a verified gap, while re-reading
    rereading_since: float | None = None  # re-seeked after a lost delivery (monotonic s)
    committable: int | None = None  # offsets below this were written in this assignment
    sweep_from: bytes | None = None
    next_sweep: float = 0.0

    def advance_to(self, next_offset: int) -> None:
        """The partition's offsets are complete below ``next_offset``; any re-read is over."""
        self.next_offset = next_offset
        self.verified_next = self.rereading_since = None


@dataclass
class Plan:
    """Everything one partition's share of a batch will write, computed before writing."""

    partition: int
    through: int  # highest offset of the partition's events in this batch
    result: BatchResult
    state: PartitionState
    segment: Segment | None
    expired_segments: list[int]
    expired_windows: list[Any]
    watermark_ms: int
    invalid: list[tuple[EventT, str]] = field(default_factory=list)


Seek = Callable[[Mapping[TP, int]], Awaitable[None]]


class OrderBatchProcessor:
    """Applies batches of order events to the tables; one instance per worker."""

    def __init__(self, tables: StatsTables, dlq: faust.TopicT, settings: Settings,
                 probe: LogProbe, seek: Seek) -> None:
        self.tables = tables
        self.dlq = dlq
        self.settings = settings
        self.probe = probe
        self.seek = seek
        self.topic = settings.orders_topic
        self.partitions: dict[int, PartitionState] = {}
        self.started = False

    def commit_offset(self, partition: int) -> int | None:
        """The offset Kafka may record as consumed for ``partition`` (None: nothing new)."""
        state = self.partitions.get(partition)
        return None if state is None else state.committable

    def forget(self, tps: set[TP]) -> None:
        """Drop in-memory state of partitions that left us; reloaded from tables if they return."""
        for tp in tps:
            if tp.topic == self.settings.orders_topic:
                self.partitions.pop(tp.partition, None)

    def _state(self, partition: int) -> PartitionState:
        state = self.partitions.get(partition)
        if state is None:
            last, watermark, seq = self.tables.progress.get(partition, partition) or (-1, 0, 0)
            dedup = DedupIndex(self.settings.dedup_horizon_s * 1000,
                               self.tables.dedup.local_keys(partition))
            indexed = dedup.catch_up(Segment(key[1], value[0], value[1])
                                     for key, value in self.tables.dedup.items(partition))
            log.info("partition %s: resuming after offset %s, %s dedup segments (%s ids "
                     "re-indexed)", partition, last, len(dedup.live), indexed)
            state = self.partitions[partition] = PartitionState(last, watermark, seq, dedup,
                                                                next_offset=last + 1)
        return state

    async def _admit(self, partition: int, events: list[EventT]) -> list[EventT]:
        """The events that continue the partition's offsets without a hole, in order.

        Re-deliveries (offsets already passed) are admitted: the fences make them replays.
        A jump is admitted once the broker confirms the skipped offsets hold no records;
        otherwise the partition is re-read and, until the re-read reaches the expected
        offset, jumping events (fetched before it) are dropped; they come again.
        """
        state = self._state(partition)
        expected = state.next_offset
        for i, event in enumerate(events):  # the common case: no jump at all
            offset = event.message.offset
            if offset == expected:
                expected += 1
            elif offset > expected:
                break
        else:
            i = len(events)
        if expected != state.next_offset:
            state.advance_to(expected)
        if i == len(events):
            return events
        admitted: list[EventT] = events[:i]
        while i < len(events):
            event = events[i]
            offset = event.message.offset
            if offset < state.next_offset:
                admitted.append(event)
            elif offset == state.next_offset or offset == state.verified_next:
                admitted.append(event)
                state.advance_to(offset + 1)
            elif state.rereading_since is not None:
                if time.monotonic() - state.rereading_since > REREAD_PATIENCE_S:
                    state.rereading_since = None  # the re-read never came: ask again
                    continue
            elif await self._accept_jump(partition, state, offset):
                continue  # verified_next == offset now
            i += 1
        return admitted

    async def _accept_jump(self, partition: int, state: PartitionState, offset: int) -> bool:
        """Whether the partition may go on at ``offset``; if not, it is re-read (seek)."""
        start = state.next_offset
        log.info("partition %s: offset %s follows %s; asking the broker what lies between",
                 partition, offset, start - 1)
        committed = await self.probe.committed(partition)
        if committed is not None and committed > start:
            # Only `orderstats replay` moves the group past what was written here.
            log.info("partition %s: group repositioned to %s, skipping %s..%s", partition,
                     committed, start, committed - 1)
            start = committed
        first = await self.probe.first_offset(partition, start)
        if first is not None and first >= offset:
            if offset > start:
                log.info("partition %s: offsets %s..%s hold no records (transaction markers, "
                         "compaction or retention)", partition, start, offset - 1)
            state.verified_next = offset
            return True
        log.warning("partition %s: offsets %s..%s were not delivered (rebalance); re-reading "
                    "from %s", partition, start, offset - 1, start)
        metrics.REREADS.inc()
        state.verified_next = first if first is not None and first > start else None
        state.next_offset = start
        state.rereading_since = time.monotonic()
        try:
            await self.seek({TP(self.topic, partition): start})
        except Exception as exc:  # revoked meanwhile: its next owner starts from the commit
            log.warning("partition %s: re-read not started (%r)", partition, exc)
        return False

    async def process(self, events: Sequence[EventT]) -> None:
        started = time.perf_counter()
        if not self.started:
            self.started = True
            metrics.FIRST_BATCH.set_to_current_time()
        groups: dict[int, list[EventT]] = {}
        for event in events:
            groups.setdefault(event.message.partition, []).append(event)
        for partition, evs in list(groups.items()):
            admitted = await self._admit(partition, evs)
            if admitted:
                groups[partition] = admitted
            else:
                del groups[partition]
        now_ms = int(time.time() * 1000)
        plans = [self._plan(p, evs, now_ms) for p, evs in groups.items()]
        try:
            # A rebalance waits for this batch (stream_wait_empty), so every partition
            # planned here is still ours and open until the batch is acked.
            for plan in plans:
                await self._write(plan)
        except BaseException:
            # Faust would ack this batch although its state is half written: stop hard, the
            # restart replays from the last commit and the fences keep the counts exact.
            log.critical("writing a batch failed; exiting so no offset is committed",
                         exc_info=True)
            logging.shutdown()
            os._exit(70)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_EVENTS.observe(len(events))

    def _plan(self, partition: int, events: list[EventT], now_ms: int) -> Plan:
        state = self._state(partition)
        cutoff = late_cutoff_ms(now_ms, self.settings.retention_s)
        accepted: list[Applied] = []
        invalid: list[tuple[EventT, str]] = []
        watermark = state.watermark_ms
        duplicates = 0
        max_time = now_ms + MAX_FUTURE_MS
        decoded: list[tuple[int, Order]] = []
        for event in events:
            offset = event.message.offset
            try:
                decoded.append((offset, decode_order(event.message.value, max_time)))
            except InvalidOrder as exc:
                if offset > state.last_offset:  # a replayed bad event was dead-lettered before
                    invalid.append((event, str(exc)))
        state.dedup.prefetch((order.store_id, order.order_id) for _, order in decoded)
        for offset, order in decoded:
            verdict = state.dedup.check(order.store_id, order.order_id, offset)
            if verdict is Verdict.DUPLICATE:
                duplicates += offset > state.last_offset
                continue
            accepted.append(Applied(offset, order))
            if order.created_at_ms > watermark:
                watermark = order.created_at_ms
        size = self.settings.window_size_s
        wkeys = list(window_keys(accepted, size, cutoff))
        stores = list({a.order.store_id for a in accepted})
        windows = dict(zip(wkeys, self.tables.windows.get_many(partition, [list(k) for k in wkeys])))
        totals = dict(zip(stores, self.tables.totals.get_many(partition, stores)))
        result = apply_batch(accepted, windows, totals, size, cutoff)

        segment = state.dedup.seal(state.next_seq, watermark)
        expired_segments = state.dedup.expire(watermark, lambda seq: [
            tuple(e) for e in (self.tables.dedup.get(partition, [partition, seq]) or
                               (0, []))[1]])
        metrics.EVENTS.labels("counted").inc(result.counted - result.late)
        metrics.EVENTS.labels("late").inc(result.late)
        metrics.EVENTS.labels("replayed").inc(result.replayed)
        metrics.EVENTS.labels("duplicate").inc(duplicates)
        metrics.EVENTS.labels("invalid").inc(len(invalid))
        return Plan(partition, max(e.message.offset for e in events), result,
                    state, segment, expired_segments, self._expired_windows(partition, state, cutoff), watermark, invalid)

    def _expired_windows(self, partition: int, state: PartitionState, cutoff: int) -> list[Any]:
        """Scan the next slice of the partition's windows for ones past the retention.

        Faust's own window expiry uses the wall clock and forgets recovered windows (#385);
        this bounded, resumable sweep keeps the store's size bounded by the retention. After
        a full pass it rests for SWEEP_PAUSE_S, so the hot path rarely pays for it.
        """
        now = time.monotonic()
        if state.sweep_from is None and now < state.next_sweep:
            return []
        size = self.settings.window_size_s
        expired = []
        scanned = 0
        last = None
        for raw_key in self.tables.windows.raw_keys(partition, state.sweep_from):
            scanned += 1
            last = raw_key
            if raw_key.startswith(b"["):
                key = orjson.loads(raw_key)
                if not is_retained(key[1], size, cutoff):
                    expired.append(key)
            if scanned >= SWEEP_KEYS_PER_BATCH:
                break
        if scanned >= SWEEP_KEYS_PER_BATCH:
            state.sweep_from = last
        else:
            state.sweep_from = None
            state.next_sweep = now + SWEEP_PAUSE_S
        return expired

    async def _write(self, plan: Plan) -> None:
        t = self.tables
        state = plan.state
        p = plan.partition
        await t.windows.write(p, [*(([store, start], value) for (store, start), value
                                    in plan.result.windows.items()),
                                  *((key, None) for key in plan.expired_windows)])
        await t.totals.write(p, plan.result.totals.items())
        dedup: list[tuple[Any, Any]] = [([p, seq], None) for seq in plan.expired_segments]
        if plan.segment is not None:
            dedup.append(([p, plan.segment.seq],
                          [plan.segment.watermark_ms, plan.segment.entries]))
            state.next_seq = plan.segment.seq + 1
        await t.dedup.write(p, dedup)
        state.last_offset = max(state.last_offset, plan.through)
        state.committable = max(state.committable or 0, plan.through + 1)
        state.watermark_ms = plan.watermark_ms
        await t.progress.write(p, [(p, [state.last_offset, state.watermark_ms,
                                        state.next_seq])])
        metrics.WINDOWS_EXPIRED.inc(len(plan.expired_windows))
        metrics.WATERMARK.labels(str(p)).set(state.watermark_ms / 1000)
        for event, reason in plan.invalid:
            await self._dead_letter(event, reason)

    async def _dead_letter(self, event: EventT, reason: str) -> None:
        """Send the original bytes on, with the reason and the source in headers."""
        msg = event.message
        headers = [
            ("orderstats.reason", reason.encode()),
            ("orderstats.source.topic", msg.topic.encode()),
            ("orderstats.source.partition", str(msg.partition).encode()),
            ("orderstats.source.offset", str(msg.offset).encode()),
        ]
        await self.dlq.send(key=msg.key, value=msg.value, headers=headers)
