"""One partition's share of a batch as a named unit: planned completely, then written.

*Prepare* decodes, validates, dedups and aggregates against the stored values, and touches
nothing durable; *commit* writes each changed key once (one RocksDB write batch and one
changelog record per key, tables.store) and then advances the partition's progress, so an
exception while preparing leaves no trace. Invalid events go to the dead-letter topic with
the reason and their source in headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import EventT

from agents.partition import PartitionState
from agents.retention import expired_windows
from app import metrics
from app.order import InvalidOrder, Order, decode_order
from tables import keys
from tables.dedup import Segment, Verdict
from tables.fence import Applied, BatchResult, apply_batch, window_keys
from tables.schema import StatsTables
from tables.values import TotalsValue, WindowValue, dump
from tables.windows import TumblingWindows

MAX_FUTURE_MS = 7 * 86400 * 1000


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


class BatchUnit:
    """Prepares and commits partition batches against the tables; one per worker."""

    def __init__(self, tables: StatsTables, dlq: faust.TopicT,
                 windows: TumblingWindows) -> None:
        self.tables = tables
        self.dlq = dlq
        self.windows = windows

    def prepare(self, partition: int, state: PartitionState, events: list[EventT],
                now_ms: int) -> Plan:
        """Decode, validate, dedup and aggregate; reads the tables, writes nothing."""
        cutoff = self.windows.late_cutoff_ms(now_ms)
        decoded, invalid = self._decode(state, events, now_ms + MAX_FUTURE_MS)
        accepted, duplicates, watermark = self._dedup(state, decoded)
        wkeys = list(window_keys(accepted, self.windows, cutoff))
        stores = list({a.order.store_id for a in accepted})
        t = self.tables
        stored_windows = {k: WindowValue.load(v) for k, v in zip(
            wkeys, t.windows.get_many(partition, [keys.window_key(*k) for k in wkeys]))}
        stored_totals = {s: TotalsValue.load(v) for s, v in zip(
            stores, t.totals.get_many(partition, stores))}
        result = apply_batch(accepted, stored_windows, stored_totals, self.windows, cutoff)
        segment = state.dedup.seal(state.next_seq, watermark)
        expired_segments = state.dedup.expire(watermark, lambda seq: [
            tuple(e) for e in (t.dedup.get(partition, keys.dedup_segment_key(partition, seq))
                               or (0, []))[1]])
        metrics.EVENTS.labels("counted").inc(result.counted - result.late)
        metrics.EVENTS.labels("late").inc(result.late)
        metrics.EVENTS.labels("replayed").inc(result.replayed)
        metrics.EVENTS.labels("duplicate").inc(duplicates)
        metrics.EVENTS.labels("invalid").inc(len(invalid))
        return Plan(partition, max(e.message.offset for e in events), result, state, segment,
                    expired_segments,
                    expired_windows(t.windows, partition, state, self.windows, cutoff),
                    watermark, invalid)

    @staticmethod
    def _decode(state: PartitionState, events: list[EventT], max_time_ms: int
                ) -> tuple[list[tuple[int, Order]], list[tuple[EventT, str]]]:
        decoded: list[tuple[int, Order]] = []
        invalid: list[tuple[EventT, str]] = []
        for event in events:
            offset = event.message.offset
            try:
                decoded.append((offset, decode_order(event.message.value, max_time_ms)))
            except InvalidOrder as exc:
                if offset > state.last_offset:  # a replayed bad event was dead-lettered before
                    invalid.append((event, str(exc)))
        return decoded, invalid

    @staticmethod
    def _dedup(state: PartitionState, decoded: list[tuple[int, Order]]
               ) -> tuple[list[Applied], int, int]:
        """The orders to apply, the number of new duplicates, and the new watermark."""
        state.dedup.prefetch((order.store_id, order.order_id) for _, order in decoded)
        accepted: list[Applied] = []
        duplicates = 0
        watermark = state.watermark_ms
        for offset, order in decoded:
            verdict = state.dedup.check(order.store_id, order.order_id, offset)
            if verdict is Verdict.DUPLICATE:
                duplicates += offset > state.last_offset
                continue
            accepted.append(Applied(offset, order))
            if order.created_at_ms > watermark:
                watermark = order.created_at_ms
        return accepted, duplicates, watermark

    async def commit(self, plan: Plan) -> None:
        """Write the plan: windows, totals, dedup segments, then the partition's progress."""
        t, state, p = self.tables, plan.state, plan.partition
        await t.windows.write(p, [
            *((keys.window_key(*key), dump(value)) for key, value in plan.result.windows.items()),
            *((key, None) for key in plan.expired_windows)])
        await t.totals.write(p, ((store, dump(v)) for store, v in plan.result.totals.items()))
        dedup: list[tuple[Any, Any]] = [(keys.dedup_segment_key(p, seq), None)
                                        for seq in plan.expired_segments]
        if plan.segment is not None:
            dedup.append((keys.dedup_segment_key(p, plan.segment.seq),
                          [plan.segment.watermark_ms, plan.segment.entries]))
            state.next_seq = plan.segment.seq + 1
        await t.dedup.write(p, dedup)
        state.last_offset = max(state.last_offset, plan.through)
        state.committable = max(state.committable or 0, plan.through + 1)
        state.watermark_ms = plan.watermark_ms
        await t.progress.write(p, [(p, [state.last_offset, state.watermark_ms, state.next_seq])])
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
