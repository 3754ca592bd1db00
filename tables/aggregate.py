"""Applying a partition's batch of orders to per-store state, exactly once per source offset.

Pure logic (no Faust, no Kafka): the agent reads the current values of every key the batch
touches, calls :func:`apply_batch`, and writes back each changed key once. Each stored value
carries the offset of the last event applied to it (the fence). A store's events arrive through
one partition in offset order, so an event at or below a key's fence was applied before (a
replay after a crash, rebalance or reset) and is skipped for that key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

from app.events import Order
from tables.windows import window_start_s

# Stored value layouts (JSON lists keep records small; positions are fixed):
#   window  [orders, revenue, items, fence]
#   totals  [orders, revenue, items, late, fence]
W_ORDERS, W_REVENUE, W_ITEMS, W_FENCE = range(4)
T_ORDERS, T_REVENUE, T_ITEMS, T_LATE, T_FENCE = range(5)
NO_FENCE = -1

WindowKey = tuple[str, int]  # (store_id, window start in epoch seconds)


def new_window() -> list[int]:
    return [0, 0, 0, NO_FENCE]


def new_totals() -> list[int]:
    return [0, 0, 0, 0, NO_FENCE]


class Applied(NamedTuple):
    """One accepted order at its source offset."""

    offset: int
    order: Order


@dataclass
class BatchResult:
    """New values for every key the batch touched (fenced-out keys included, see below)."""

    windows: dict[WindowKey, list[int]] = field(default_factory=dict)
    totals: dict[str, list[int]] = field(default_factory=dict)
    counted: int = 0
    late: int = 0
    replayed: int = 0


def window_keys(orders: Iterable[Applied], size_s: int, cutoff_ms: int) -> set[WindowKey]:
    """The window keys a batch will touch: what the caller must read before applying."""
    return {(a.order.store_id, window_start_s(a.order.created_at_ms, size_s))
            for a in orders if a.order.created_at_ms >= cutoff_ms}


def apply_batch(orders: Iterable[Applied], windows: dict[WindowKey, list[int] | None],
                totals: dict[str, list[int] | None], size_s: int,
                cutoff_ms: int) -> BatchResult:
    """Fold ``orders`` (one partition, ascending offsets) into copies of the given values.

    ``windows``/``totals`` map every touched key to its stored value (None if absent). Keys
    whose events were all fenced out are returned unchanged too: rewriting them re-sends the
    changelog record that a crash may have lost after the local store had it.
    """
    out = BatchResult()
    for offset, order in orders:
        store = order.store_id
        t = out.totals.get(store)
        if t is None:
            stored = totals.get(store)
            t = out.totals[store] = list(stored) if stored else new_totals()
        is_late = order.created_at_ms < cutoff_ms
        if offset > t[T_FENCE]:
            t[T_ORDERS] += 1
            t[T_REVENUE] += order.total
            t[T_ITEMS] += order.items
            t[T_LATE] += is_late
            t[T_FENCE] = offset
            out.counted += 1
            out.late += is_late
        else:
            out.replayed += 1
        if is_late:
            continue
        key = (store, window_start_s(order.created_at_ms, size_s))
        w = out.windows.get(key)
        if w is None:
            stored = windows.get(key)
            w = out.windows[key] = list(stored) if stored else new_window()
        if offset > w[W_FENCE]:
            w[W_ORDERS] += 1
            w[W_REVENUE] += order.total
            w[W_ITEMS] += order.items
            w[W_FENCE] = offset
    return out
