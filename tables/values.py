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
    """One store's tumbling window: sums of its orders, a fence per source, and its close.

    ``revision`` 0: open. Once closed (tables/closing.py), the revision published to the
    window-results topic and the wall-clock time of that close live in the value itself, so
    a close is one more write of the same key (same RocksDB batch, same changelog) and a
    late order that changes the figures is seen to re-open a closed window with no index of
    closed windows in memory."""

    orders: int = 0
    revenue: Revenue = {}  # never mutated: values are rebuilt, not updated in place
    items: int = 0
    fences: tuple[int, int] = (NO_FENCE, NO_FENCE)
    revision: int = 0
    closed_at_ms: int = 0

    @classmethod
    def load(cls, stored: Any) -> "WindowValue":
        if stored is None:
            return cls()
        orders, revenue, items, *rest = stored
        if len(rest) > 2:
            return cls(orders, _revenue(revenue), items, (rest[0], rest[1]), rest[2], rest[3])
        return cls(orders, _revenue(revenue), items, _fences(rest))

    def dump(self) -> list:
        if self.revision:
            return [self.orders, self.revenue, self.items, *self.fences, self.revision,
                    self.closed_at_ms]
        return [self.orders, self.revenue, self.items, *self.fences]

    @staticmethod
    def closed_at_of(raw: bytes) -> int:
        """The close time of a stored (JSON) value without decoding it; 0 if it is open.

        A restart scans every window of a partition (agents/closer.py), a day of minutes
        for every store; nearly all are closed, and this is what the scan needs of them.
        A closed value ends with five integers (items, two fences, revision, close time)
        after the revenue dict; in any other value, one of the five comma-separated parts
        before the end holds a dict entry (``"EUR":5``) or the opening bracket."""
        parts = raw.rsplit(b",", 5)
        if len(parts) != 6 or not parts[0].endswith(b"}"):
            return 0
        try:
            revision, closed_at = int(parts[4]), int(parts[5][:-1])
            int(parts[1]), int(parts[2]), int(parts[3])
        except ValueError:
            return 0
        return closed_at if revision > 0 else 0

    def closed(self, now_ms: int) -> "WindowValue":
        """This value closed (again) at ``now_ms``: the next revision."""
        return self._replace(revision=self.revision + 1, closed_at_ms=now_ms)


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
    partition's stores, the next dedup segment's seq, the offset of the dead-letter
    partition after this partition's last dead letter (-1: unknown, an older record), and
    the close time up to which every closed window's result is confirmed published (a
    window closed later is published again after a restart, agents/closer.py), and per
    source the offset up to which every table write is acknowledged (agents/batch.py: a
    replay below it need not rewrite unchanged keys)."""

    last_offsets: tuple[int, int] = (-1, -1)
    watermark_ms: int = 0
    next_seq: int = 0
    dlq_next: int = -1
    results_confirmed_ms: int = 0
    # Per source: the last offset whose batch's changelog records were all acknowledged.
    durable: tuple[int, int] = (-1, -1)

    @classmethod
    def load(cls, stored: Any) -> "Progress":
        if stored is None:
            return cls()
        last, watermark, seq, *rest = stored
        return cls((last, rest[0] if rest else -1), watermark, seq,
                   rest[1] if len(rest) > 1 else -1, rest[2] if len(rest) > 2 else 0,
                   (rest[3], rest[4]) if len(rest) > 4 else (-1, -1))

    def dump(self) -> list:
        return [self.last_offsets[ORDERS], self.watermark_ms, self.next_seq,
                self.last_offsets[REPARTITION], self.dlq_next, self.results_confirmed_ms,
                *self.durable]


class DedupSegmentValue(NamedTuple):
    """One batch's new order ids of a partition: [[store, order id, first offset], ...]."""

    watermark_ms: int
    entries: list
