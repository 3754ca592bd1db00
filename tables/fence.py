"""The offset fence: applying a partition's batch of orders exactly once per source offset.

Pure logic (no Faust, no Kafka): the agent reads the current values of every key the batch
touches, calls :func:`apply_batch`, and writes back each changed key once. Each stored value
carries the offset of the last event applied to it (the fence). A store's events arrive through
one partition in offset order, so an event at or below a key's fence was applied before (a
replay after a crash, rebalance or reset) and is skipped for that key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, NamedTuple

from app.order import Order
from tables.keys import WindowKey
from tables.values import TotalsValue, WindowValue
from tables.windows import TumblingWindows


class Applied(NamedTuple):
    """One accepted order at its source offset."""

    offset: int
    order: Order


@dataclass
class BatchResult:
    """New values for every key the batch touched (fenced-out keys included, see below)."""

    windows: dict[WindowKey, WindowValue] = field(default_factory=dict)
    totals: dict[str, TotalsValue] = field(default_factory=dict)
    counted: int = 0
    late: int = 0
    replayed: int = 0


def window_keys(orders: Iterable[Applied], windows: TumblingWindows,
                cutoff_ms: int) -> set[WindowKey]:
    """The window keys a batch will touch: what the caller must read before applying."""
    return {(a.order.store_id, windows.start_s(a.order.created_at_ms))
            for a in orders if a.order.created_at_ms >= cutoff_ms}


def apply_batch(orders: Iterable[Applied], stored_windows: Mapping[WindowKey, WindowValue],
                stored_totals: Mapping[str, TotalsValue], windows: TumblingWindows,
                cutoff_ms: int) -> BatchResult:
    """Fold ``orders`` (one partition, ascending offsets) into new values.

    ``stored_*`` map every touched key to its stored value (absent: never written). Keys
    whose events were all fenced out are returned unchanged too: rewriting them re-sends the
    changelog record that a crash may have lost after the local store had it.
    """
    out = BatchResult()
    new_windows, new_totals = out.windows, out.totals
    for offset, order in orders:
        store = order.store_id
        t = new_totals.get(store) or stored_totals.get(store) or TotalsValue()
        is_late = order.created_at_ms < cutoff_ms
        if offset > t.fence:
            t = TotalsValue(t.orders + 1, t.revenue + order.total, t.items + order.items,
                            t.late + is_late, offset)
            out.counted += 1
            out.late += is_late
        else:
            out.replayed += 1
        new_totals[store] = t
        if is_late:
            continue
        key = (store, windows.start_s(order.created_at_ms))
        w = new_windows.get(key) or stored_windows.get(key) or WindowValue()
        if offset > w.fence:
            w = WindowValue(w.orders + 1, w.revenue + order.total, w.items + order.items,
                            offset)
        new_windows[key] = w
    return out
