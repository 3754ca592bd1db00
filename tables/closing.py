"""When a partition's windows close, and what their published results look like (pure logic).

A closed window is published to the compacted topic ``APP_ID-window-results`` as a fact for
downstream readers. Why both close rules: event time alone (the watermark) never closes the
last window of a partition that stops receiving orders, which is what Kafka Streams'
suppress and Quix Streams' final() get wrong. So a window [start, end) closes when

* the partition's event-time watermark reaches ``end + grace``, or
* the wall clock reaches ``end + grace`` and the partition has received no event for at
  least ``grace`` (a busy partition, e.g. one replaying old orders, is never closed by the
  wall clock: its watermark will get there, and closing early would only add revisions).

Where the state of a close lives (why no index of closed windows in memory): in the window's
own value (``WindowValue.revision`` and ``closed_at_ms``), written with the close in the same
RocksDB batch and changelog as its figures. Only the open windows (revision 0) are indexed in
memory, by end time (:class:`OpenWindows`), which is about stores x sizes, not stores x
retention. An order that changes a closed window's figures closes it again at once with the
next revision (:func:`reclosed`), so the latest revision in the compacted topic is the truth.

Same key, same revision, same value, across crashes: a value's revision changes only with a
close, and its figures only with an order, which (on a closed window) is a new close. So the
table never holds two values under one revision. The wiring publishes only after the
window's changelog record is acknowledged, and records in the partition's progress the close
time up to which everything is confirmed published; a restart publishes again the windows
closed after it (:func:`unconfirmed`), with the value, revision and close time of the table:
the same record. Never a lower revision after a higher one: the revision in the table only
grows, and what is published is read from it.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import orjson

from app.timefmt import format_iso_ms, format_iso_s
from tables.keys import WindowKey
from tables.values import WindowValue


def close_limit(watermark_ms: int, now_ms: int, last_event_wall_ms: int, grace_ms: int) -> int:
    """Windows ending at or before this instant are due to close (see the module docstring).

    ``last_event_wall_ms``: wall clock when the partition last received an event; the wiring
    passes the time the partition was assigned when none came since, so a restarted worker
    reads its backlog before it closes anything by the wall clock."""
    idle = now_ms - last_event_wall_ms >= grace_ms
    return (max(watermark_ms, now_ms) if idle else watermark_ms) - grace_ms


def reclosed(stored: WindowValue, new: WindowValue, now_ms: int) -> Optional[WindowValue]:
    """``new`` closed again (next revision) when it is a closed window whose figures an order
    of this batch changed (a late-after-close order); None otherwise."""
    if new.revision and new.orders != stored.orders:
        return new.closed(now_ms)
    return None


def unconfirmed(value: WindowValue, confirmed_ms: int) -> bool:
    """Closed after the close time the partition's progress confirms published: publish it
    again (after a crash between the table write and the confirmation)."""
    return value.revision > 0 and value.closed_at_ms > confirmed_ms


class OpenWindows:
    """One partition's windows that are not closed yet, by end time.

    :meth:`due` looks at the distinct end times only (about one per size and window), so a
    batch pays a dict lookup per touched window and nothing per closed one."""

    def __init__(self) -> None:
        self._by_end: dict[int, set[WindowKey]] = {}

    def __len__(self) -> int:
        return sum(len(keys) for keys in self._by_end.values())

    def add(self, key: WindowKey, end_ms: int) -> None:
        keys = self._by_end.get(end_ms)
        if keys is None:
            keys = self._by_end[end_ms] = set()
        keys.add(key)

    def merge(self, other: "OpenWindows") -> None:
        """Add every window of ``other`` (a scan's findings)."""
        for end, keys in other._by_end.items():
            self._by_end.setdefault(end, set()).update(keys)

    def next_end(self) -> Optional[int]:
        """The earliest end time of an open window (None: none open)."""
        return min(self._by_end, default=None)

    def due(self, limit_ms: int) -> list[WindowKey]:
        """Remove and return the windows ending at or before ``limit_ms``, in end order."""
        out: list[WindowKey] = []
        for end in sorted(end for end in self._by_end if end <= limit_ms):
            out.extend(sorted(self._by_end.pop(end), key=repr))
        return out


class WindowResult(NamedTuple):
    """One record of ``APP_ID-window-results``: a window's final figures at a revision."""

    store: str
    size: str
    start_ms: int
    end_ms: int
    orders: int
    revenue: dict[str, int]  # currency -> minor units
    items: int
    closed_at_ms: int
    revision: int
    label: Optional[str] = None  # the local name, e.g. "2026-11-23" (Calendar.local_label)
    epoch: int = 1  # the state epoch (a rebuild starts revisions again in a new epoch)

    @classmethod
    def of(cls, store: str, size: str, start_ms: int, end_ms: int, value: WindowValue,
           epoch: int = 1, label: Optional[str] = None) -> "WindowResult":
        """The result of a closed window's value (its revision and close time included)."""
        if not value.revision:
            raise ValueError(f"window {store!r} {size} {start_ms}: not closed")
        return cls(store, size, start_ms, end_ms, value.orders, value.revenue, value.items,
                   value.closed_at_ms, value.revision, label, epoch)


def result_key(store: str, size: str, start_ms: int) -> bytes:
    """``["s-042","1h","2026-11-23T00:00:00Z"]``: readable, stable, one per window (so
    compaction keeps the latest revision). Window starts are whole seconds."""
    if start_ms % 1000:
        raise ValueError(f"window start {start_ms} ms is not a whole second")
    return orjson.dumps([store, size, format_iso_s(start_ms // 1000)])


def encode_result(result: WindowResult) -> tuple[bytes, bytes]:
    """(key, value) bytes; equal results give equal bytes (keys sorted, no float)."""
    value = {
        "store": result.store, "window": result.size,
        "start": format_iso_s(result.start_ms // 1000), "end": format_iso_s(result.end_ms // 1000),
        "orders": result.orders, "revenue": result.revenue, "items": result.items,
        "closed_at": format_iso_ms(result.closed_at_ms), "revision": result.revision,
        "epoch": result.epoch,
    }
    if result.label is not None:
        value["label"] = result.label
    return (result_key(result.store, result.size, result.start_ms),
            orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
