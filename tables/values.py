"""Named shapes of the values the tables store.

On disk and in the changelogs a value is a JSON list (small records, fixed positions); in
code it is one of these NamedTuples, so no caller indexes a list by position.
"""

from __future__ import annotations

from typing import Any, NamedTuple

NO_FENCE = -1  # the fence of a value no event has been applied to yet


class WindowValue(NamedTuple):
    """One store's tumbling window: sums of its orders, and the offset of the last one."""

    orders: int = 0
    revenue: int = 0  # minor units
    items: int = 0
    fence: int = NO_FENCE

    @classmethod
    def load(cls, stored: Any) -> "WindowValue":
        return cls() if stored is None else cls(*stored)


class TotalsValue(NamedTuple):
    """One store's lifetime totals (late orders included, and counted apart)."""

    orders: int = 0
    revenue: int = 0
    items: int = 0
    late: int = 0
    fence: int = NO_FENCE

    @classmethod
    def load(cls, stored: Any) -> "TotalsValue":
        return cls() if stored is None else cls(*stored)


class Progress(NamedTuple):
    """One partition: the last offset applied, its event-time watermark, the next dedup seq."""

    last_offset: int = -1
    watermark_ms: int = 0
    next_seq: int = 0

    @classmethod
    def load(cls, stored: Any) -> "Progress":
        return cls() if stored is None else cls(*stored)


class DedupSegmentValue(NamedTuple):
    """One batch's new order ids of a partition: [[store, order id, first offset], ...]."""

    watermark_ms: int
    entries: list


def dump(value: tuple) -> list:
    """The stored (JSON list) form of any of the values above."""
    return list(value)
