"""Named shapes of the values the tables store.

On disk and in the changelogs a value is a JSON list (small records, fixed positions); in
code it is one of these NamedTuples, so no caller indexes a list by position.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from app.order import NO_CURRENCY  # orders that name no currency count under it

NO_FENCE = -1  # the fence of a value no event has been applied to yet
# A store's values are fed by two sources, each with its own offsets and so its own fence:
ORDERS, REPARTITION = 0, 1  # the orders topic; the repartition topic (APP_ID-orders-by-store)
SOURCES = (ORDERS, REPARTITION)

Revenue = dict[str, int]  # currency -> minor units; currencies are never added together


def _revenue(stored: Any) -> Revenue:
    # Values written before revenue was kept per currency hold one integer.
    return {NO_CURRENCY: stored} if isinstance(stored, int) else stored


class WindowValue(NamedTuple):
    """One store's tumbling window: sums of its orders, and a fence per source."""

    orders: int = 0
    revenue: Revenue = {}  # never mutated: values are rebuilt, not updated in place
    items: int = 0
    fences: tuple[int, int] = (NO_FENCE, NO_FENCE)

    @classmethod
    def load(cls, stored: Any) -> "WindowValue":
        if stored is None:
            return cls()
        orders, revenue, items, *fences = stored
        return cls(orders, _revenue(revenue), items, _fences(fences))

    def dump(self) -> list:
        return [self.orders, self.revenue, self.items, *self.fences]


class TotalsValue(NamedTuple):
    """One store's lifetime totals (late orders included, and counted apart)."""

    orders: int = 0
    revenue: Revenue = {}
    items: int = 0
    late: int = 0
    fences: tuple[int, int] = (NO_FENCE, NO_FENCE)

    @classmethod
    def load(cls, stored: Any) -> "TotalsValue":
        if stored is None:
            return cls()
        orders, revenue, items, late, *fences = stored
        return cls(orders, _revenue(revenue), items, late, _fences(fences))

    def dump(self) -> list:
        return [self.orders, self.revenue, self.items, self.late, *self.fences]


def _fences(stored: list[int]) -> tuple[int, int]:
    # One fence (the orders topic's) in values written before the repartition path existed.
    return (stored[0] if stored else NO_FENCE, stored[1] if len(stored) > 1 else NO_FENCE)


class Progress(NamedTuple):
    """One partition: per source the last offset applied, the event-time watermark of the
    partition's stores, the next dedup segment's seq, and the offset of the dead-letter
    partition after this partition's last dead letter (-1: unknown, an older record)."""

    last_offsets: tuple[int, int] = (-1, -1)
    watermark_ms: int = 0
    next_seq: int = 0
    dlq_next: int = -1

    @classmethod
    def load(cls, stored: Any) -> "Progress":
        if stored is None:
            return cls()
        last, watermark, seq, *rest = stored
        return cls((last, rest[0] if rest else -1), watermark, seq,
                   rest[1] if len(rest) > 1 else -1)

    def dump(self) -> list:
        return [self.last_offsets[ORDERS], self.watermark_ms, self.next_seq,
                self.last_offsets[REPARTITION], self.dlq_next]


class DedupSegmentValue(NamedTuple):
    """One batch's new order ids of a partition: [[store, order id, first offset], ...]."""

    watermark_ms: int
    entries: list
