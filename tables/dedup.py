"""Duplicate-order detection: which (store, order_id) pairs a partition has seen, and where.

Pure logic. Each entry remembers the offset of the order's first occurrence: meeting that
offset again is a replay (the fence decides), any other offset is a duplicate (skipped).
Entries are persisted as append-only *segments*, one per partition per batch, so the hot
path writes one changelog record per batch instead of one per order. A segment is dropped
once the partition's stream time (highest created_at seen) has moved ``horizon_ms`` past it.
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from typing import Iterable, NamedTuple

Entry = tuple[str, str, int]  # (store_id, order_id, first offset)


class Verdict(Enum):
    NEW = "new"
    REPLAY = "replay"
    DUPLICATE = "duplicate"


class Segment(NamedTuple):
    seq: int
    watermark_ms: int
    entries: list[Entry]


class DedupIndex:
    """The seen-orders index of one partition."""

    def __init__(self, horizon_ms: int) -> None:
        self.horizon_ms = horizon_ms
        self._first: dict[tuple[str, str], int] = {}
        self._segments: deque[Segment] = deque()
        self._pending: list[Entry] = []

    def __len__(self) -> int:
        return len(self._first)

    def check(self, store_id: str, order_id: str, offset: int) -> Verdict:
        """Classify one occurrence; a NEW one is remembered until :meth:`seal`."""
        key = (store_id, order_id)
        first = self._first.get(key)
        if first is None:
            self._first[key] = offset
            self._pending.append((store_id, order_id, offset))
            return Verdict.NEW
        return Verdict.REPLAY if first == offset else Verdict.DUPLICATE

    def seal(self, seq: int, watermark_ms: int) -> Segment | None:
        """Turn the entries added since the last seal into a segment to persist."""
        if not self._pending:
            return None
        segment = Segment(seq, watermark_ms, self._pending)
        self._pending = []
        self._segments.append(segment)
        return segment

    def load(self, segments: Iterable[Segment]) -> None:
        """Rebuild from persisted segments (after recovery or a rebalance)."""
        for segment in sorted(segments, key=lambda s: s.seq):
            self._segments.append(segment)
            for store_id, order_id, offset in segment.entries:
                self._first.setdefault((store_id, order_id), offset)

    def expire(self, watermark_ms: int) -> list[int]:
        """Forget segments older than the horizon; returns their seqs for deletion."""
        dropped = []
        limit = watermark_ms - self.horizon_ms
        while self._segments and self._segments[0].watermark_ms < limit:
            segment = self._segments.popleft()
            for store_id, order_id, offset in segment.entries:
                if self._first.get((store_id, order_id)) == offset:
                    del self._first[(store_id, order_id)]
            dropped.append(segment.seq)
        return dropped
