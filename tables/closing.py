"""When a partition's windows close, and what their published results look like (pure logic).

A closed window is published to the compacted topic ``APP_ID-window-results`` as a fact for
downstream readers. Why both close rules: event time alone (the watermark) never closes the
last window of a partition that stops receiving orders, which is what Kafka Streams'
suppress and Quix Streams' final() get wrong. So a window [start, end) closes when

* the partition's event-time watermark reaches ``end + grace``, or
* the wall clock reaches ``end + grace`` and the partition has received no event for at
  least ``grace`` (a busy partition, e.g. one replaying old orders, is never closed by the
  wall clock: its watermark will get there, and closing early would only add revisions).

An order counted after its window closed re-opens the window ("dirty"); the next
:meth:`ClosingState.due` closes it again with the next revision, so the latest revision
in the compacted topic is always the truth.

Same key, same revision, same value, across crashes (why the fences are kept here):
a revision is never taken from an in-memory counter alone. Each window's entry holds, in
this serialized state, its last revision and the *fences* of the window value that
revision was closed with (``WindowValue.fences``: per source, the offset of the last event
applied). A store's events reach its window value in offset order, so equal fences mean
an equal value. The wiring writes this state in the same batch (RocksDB write batch and
changelog flush) as the window values, and publishes only after that flush. Hence:

* a revision is published only once the state saying "revision r, fences F, closed at C"
  is durable; any state restored later has revision r or higher for that window;
* re-publishing (:meth:`ClosingState.pending` after a restart) happens only when the
  window value read from the table still has fences F, so its figures, and C, are those
  of the first publication; if the value moved on, revision r is superseded, the window is
  dirty and the next :meth:`~ClosingState.due` publishes r + 1. Never a lower revision after
  a higher one, never one revision with two values;
* :meth:`ClosingState.observe` is given the window's fences after each batch, counted or
  replayed alike, so "dirty" is derived from durable values (fences differ from the closed
  ones), not from whether this process happened to see the late order: a replay that
  changes nothing re-opens nothing.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Iterable, NamedTuple, Optional

import orjson

from app.timefmt import format_iso_ms, format_iso_s
from tables.values import WindowValue

WindowId = tuple[str, str, int]  # store, size name ("1m"), window start (epoch ms)
Fences = tuple[int, ...]  # WindowValue.fences: identifies the value (see module docstring)
_FORMAT = 1  # version of the serialized state
_NEVER = -1 << 62  # the horizon of a size nothing was forgotten of


class Observed(IntEnum):
    """What :meth:`ClosingState.observe` found: REOPENED is a late-after-close (metric)."""

    OPEN = 0  # new, still open, or already dirty
    REOPENED = 1  # was closed, and its value changed since: the next due() republishes it
    SETTLED = 2  # closed, value unchanged (a replay): nothing to do
    EXPIRED = 3  # ends at or before a forgotten horizon: ignored (its revision is gone)


class Due(NamedTuple):
    """A window to publish: revision ``revision`` with the value whose fences are ``fences``."""

    store: str
    size: str
    start_ms: int
    end_ms: int
    revision: int  # 1 at the first close
    closed_at_ms: int  # wall clock of the close, durable so a re-publish is identical
    fences: Fences


class _Entry:
    __slots__ = ("end", "fences", "revision", "closed_fences", "closed_at", "published")

    def __init__(self, end: int, fences: Fences, revision: int = 0,
                 closed_fences: Optional[Fences] = None, closed_at: int = 0,
                 published: bool = False) -> None:
        self.end, self.fences, self.revision = end, fences, revision
        self.closed_fences, self.closed_at, self.published = closed_fences, closed_at, published

    @property
    def settled(self) -> bool:
        """Closed, with the value it was closed with."""
        return self.revision > 0 and self.fences == self.closed_fences


class ClosingState:
    """One partition's windows that received orders, open or closed (within retention).

    Per batch: apply the batch; ``observe`` every window it touched with the new value's
    fences; ``due(...)``; read those windows' values (``WindowResult.of`` checks the
    fences); write windows, progress and ``dump()`` in one write batch and flush the
    changelogs; publish ``encode_result``s and flush the producer; ``published(dues)``.
    After a restart: ``load``, ``observe`` each of ``pending()`` with the table's fences,
    publish what ``pending()`` still returns.

    Cost: :meth:`observe` is a dict lookup (call it once per touched window per batch, not
    per order); :meth:`due` looks only at the distinct end times of the windows never
    closed (a handful: about the number of sizes) and at the dirty windows, then at the
    windows it closes.
    """

    def __init__(self) -> None:
        self._entries: dict[WindowId, _Entry] = {}
        self._open: dict[int, set[WindowId]] = {}  # end -> windows never closed yet
        self._dirty: set[WindowId] = set()  # closed, then their value changed
        self._horizon: dict[str, int] = {}  # size -> windows ending at or before it forgotten

    def __len__(self) -> int:
        return len(self._entries)

    def observe(self, store: str, size: str, start_ms: int, end_ms: int,
                fences: Fences) -> Observed:
        """Record the value of window (store, size, start) after a batch: its fences."""
        wid = (store, size, start_ms)
        entry = self._entries.get(wid)
        if entry is None:
            if end_ms <= self._horizon.get(size, _NEVER):
                return Observed.EXPIRED
            self._entries[wid] = _Entry(end_ms, tuple(fences))
            ids = self._open.get(end_ms)
            if ids is None:
                ids = self._open[end_ms] = set()
            ids.add(wid)
            return Observed.OPEN
        fences = tuple(fences)
        entry.fences = fences
        if not entry.revision:
            return Observed.OPEN
        if fences == entry.closed_fences:
            self._dirty.discard(wid)
            return Observed.SETTLED
        if wid in self._dirty:
            return Observed.OPEN
        self._dirty.add(wid)
        return Observed.REOPENED

    def due(self, watermark_ms: int, now_ms: int, last_event_wall_ms: Optional[int],
            grace_ms: int) -> list[Due]:
        """Close the windows whose time has come, in end order, each at its next revision.

        ``last_event_wall_ms``: wall clock when the partition last received an event (None:
        none since it was assigned; the wiring had better pass the assignment time, so a
        restarted worker does not close windows before reading its backlog). Dirty windows
        (re-opened after a close) are due at once: their close point has passed before.
        """
        idle = last_event_wall_ms is None or now_ms - last_event_wall_ms >= grace_ms
        limit = (max(watermark_ms, now_ms) if idle else watermark_ms) - grace_ms
        wids = list(self._dirty)
        self._dirty.clear()
        for end in [end for end in self._open if end <= limit]:
            wids.extend(self._open.pop(end))
        entries = self._entries
        wids.sort(key=lambda w: (entries[w].end, w[2], w[1], w[0]))
        closes = []
        for wid in wids:
            entry = entries[wid]
            entry.revision += 1
            entry.closed_fences, entry.closed_at, entry.published = entry.fences, now_ms, False
            closes.append(Due(wid[0], wid[1], wid[2], entry.end, entry.revision, now_ms,
                              entry.fences))
        return closes

    def pending(self) -> list[Due]:
        """Closed windows not yet confirmed published, in end order (after a restart: call
        :meth:`observe` with each one's fences read from the table first, then publish
        these; a window whose value moved on is dirty instead and left to :meth:`due`)."""
        out = [Due(wid[0], wid[1], wid[2], e.end, e.revision, e.closed_at, e.closed_fences)
               for wid, e in self._entries.items()
               if not e.published and e.settled]
        out.sort(key=lambda d: (d.end_ms, d.start_ms, d.size, d.store))
        return out

    def published(self, dues: Iterable[Due]) -> None:
        """The producer confirmed these (flushed): they need no re-publishing."""
        for due in dues:
            entry = self._entries.get((due.store, due.size, due.start_ms))
            if entry is not None and entry.revision == due.revision:
                entry.published = True

    def forget(self, size: str, cutoff_ms: int) -> int:
        """Drop settled, published windows of ``size`` ending at or before ``cutoff_ms``
        (out of the retention, so no order can re-open them); returns how many."""
        self._horizon[size] = max(self._horizon.get(size, cutoff_ms), cutoff_ms)
        gone = [wid for wid, e in self._entries.items()
                if wid[1] == size and e.end <= cutoff_ms and e.published and e.settled]
        for wid in gone:
            del self._entries[wid]
        return len(gone)

    def dump(self) -> bytes:
        """Compact bytes for a changelogged table: orjson lists, one per window, holding
        [store, size, start, end - start, fences, revision, fences at the close (null when
        never closed or the same as ``fences``), closed at, published 0/1]."""
        rows = [[wid[0], wid[1], wid[2], e.end - wid[2], e.fences, e.revision,
                 None if e.closed_fences is None or e.closed_fences == e.fences
                 else e.closed_fences, e.closed_at, int(e.published)]
                for wid, e in self._entries.items()]
        return orjson.dumps([_FORMAT, self._horizon, rows])

    @classmethod
    def load(cls, raw: Optional[bytes]) -> "ClosingState":
        """The state :meth:`dump` wrote (None or empty: a partition with no state yet)."""
        state = cls()
        if not raw:
            return state
        version, horizon, rows = orjson.loads(raw)
        if version != _FORMAT:
            raise ValueError(f"closing state format {version!r} is not {_FORMAT}")
        state._horizon = dict(horizon)
        for store, size, start, length, fences, revision, closed, closed_at, published in rows:
            fences = tuple(fences)
            closed_fences = (None if not revision else fences if closed is None
                             else tuple(closed))
            entry = _Entry(start + length, fences, revision, closed_fences, closed_at,
                           bool(published))
            wid = (store, size, start)
            state._entries[wid] = entry
            if not revision:
                state._open.setdefault(entry.end, set()).add(wid)
            elif not entry.settled:
                state._dirty.add(wid)
        return state


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

    @classmethod
    def of(cls, due: Due, value: WindowValue, label: Optional[str] = None) -> "WindowResult":
        """The result of ``due`` with the figures of ``value``, the window's value read from
        the table. Refused (ValueError) unless ``value`` has the fences ``due`` was closed
        with: then it is another value, and publishing it under this revision would give
        one revision two values (observe() the value instead; due() will give it the next)."""
        if tuple(value.fences) != tuple(due.fences):
            raise ValueError(f"window {due.store!r} {due.size} {due.start_ms}: value fences "
                             f"{tuple(value.fences)} are not the closed ones {due.fences}")
        return cls(due.store, due.size, due.start_ms, due.end_ms, value.orders,
                   value.revenue, value.items, due.closed_at_ms, due.revision, label)


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
    }
    if result.label is not None:
        value["label"] = result.label
    return (result_key(result.store, result.size, result.start_ms),
            orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
