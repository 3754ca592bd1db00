"""The offset fence: applying a partition's batch of orders exactly once per source offset.

Pure logic (no Faust, no Kafka): the agent reads the current values of every key the batch
touches, calls :func:`apply_batch`, and writes back each changed key once. Each stored value
carries, per source topic, the offset of the last event from it applied to the value (its
fences). A store's events arrive through one partition of each source in offset order, so
an event at or below its source's fence was applied before (a replay after a crash,
rebalance or reset) and is skipped for that key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, NamedTuple

from app.order import Order
from tables.keys import WindowKey
from tables.values import TotalsValue, WindowValue
from tables.windows import NO_ROLLUPS, Rollups, TumblingWindows


class Applied(NamedTuple):
    """One accepted order at its source (tables.values.ORDERS or REPARTITION) and offset."""

    source: int
    offset: int
    order: Order


class _Sums:
    """A value being folded: mutable while the batch is applied, frozen at the end."""

    __slots__ = ("orders", "revenue", "items", "late", "fences")

    def __init__(self, orders: int, revenue: dict[str, int], items: int, late: int,
                 fences: tuple[int, int]) -> None:
        self.orders, self.revenue, self.items, self.late = orders, dict(revenue), items, late
        self.fences = list(fences)

    def add(self, source: int, offset: int, order: Order, late: int) -> bool:
        """Apply one order unless its source's fence says it was applied before."""
        if offset <= self.fences[source]:
            return False
        self.orders += 1
        self.revenue[order.currency] = self.revenue.get(order.currency, 0) + order.total
        self.items += order.items
        self.late += late
        self.fences[source] = offset
        return True


@dataclass
class BatchResult:
    """New values for every key the batch touched (fenced-out keys included, see below)."""

    windows: dict[WindowKey, WindowValue] = field(default_factory=dict)
    totals: dict[str, TotalsValue] = field(default_factory=dict)
    counted: int = 0
    late: int = 0
    replayed: int = 0


def window_keys(orders: Iterable[Applied], windows: TumblingWindows, cutoff_ms: int,
                rollups: Rollups = NO_ROLLUPS, rollup_cutoffs: tuple[int, ...] = ()
                ) -> set[WindowKey]:
    """The window keys a batch will touch: what the caller must read before applying."""
    out: set[WindowKey] = {(a.order.store_id, windows.start_s(a.order.created_at_ms))
                           for a in orders if a.order.created_at_ms >= cutoff_ms}
    if rollups:
        # Many orders of a batch share a store and a slot no rollup boundary cuts through.
        step = rollups.slot_ms
        seen: set[tuple[str, int]] = set()
        for a in orders:
            store, t = a.order.store_id, a.order.created_at_ms
            slot = (store, t // step)
            if slot in seen:
                continue
            seen.add(slot)
            out.update(rollups.keys(store, t, rollup_cutoffs))
    return out


def apply_batch(orders: Iterable[Applied], stored_windows: Mapping[WindowKey, WindowValue],
                stored_totals: Mapping[str, TotalsValue], windows: TumblingWindows,
                cutoff_ms: int, rollups: Rollups = NO_ROLLUPS,
                rollup_cutoffs: tuple[int, ...] = ()) -> BatchResult:
    """Fold ``orders`` (one partition; each source's in ascending offsets) into new values.

    ``stored_*`` map every touched key to its stored value (absent: never written). Keys
    whose events were all fenced out are returned unchanged too: rewriting them re-sends the
    changelog record that a crash may have lost after the local store had it. With
    ``rollups``, each order also goes to its retained hour and day windows (late for the
    base windows or not), fenced per key like every window.
    """
    out = BatchResult()
    totals: dict[str, _Sums] = {}
    wins: dict[WindowKey, _Sums] = {}
    closes: dict[WindowKey, tuple[int, int]] = {}  # revision, closed at: carried unchanged
    for source, offset, order in orders:
        store = order.store_id
        t = totals.get(store)
        if t is None:
            v = stored_totals.get(store) or TotalsValue()
            t = totals[store] = _Sums(v.orders, v.revenue, v.items, v.late, v.fences)
        is_late = order.created_at_ms < cutoff_ms
        if t.add(source, offset, order, is_late):
            out.counted += 1
            out.late += is_late
        else:
            out.replayed += 1
        # The base window (unless the order is late for it), then each retained rollup.
        wkeys = rollups.keys(store, order.created_at_ms, rollup_cutoffs) if rollups else ()
        if not is_late:
            wkeys = ((store, windows.start_s(order.created_at_ms)), *wkeys)
        for key in wkeys:
            w = wins.get(key)
            if w is None:
                v = stored_windows.get(key) or WindowValue()
                w = wins[key] = _Sums(v.orders, v.revenue, v.items, 0, v.fences)
                closes[key] = (v.revision, v.closed_at_ms)
            w.add(source, offset, order, 0)
    out.totals = {k: TotalsValue(s.orders, s.revenue, s.items, s.late, tuple(s.fences))
                  for k, s in totals.items()}
    out.windows = {k: WindowValue(s.orders, s.revenue, s.items, tuple(s.fences), *closes[k])
                   for k, s in wins.items()}
    return out
