"""Answers to the API's questions from this worker's own partitions.

Reads go straight to the partitions' RocksDB stores (tables/store.py); a store's windows
are one prefix scan, since window keys sort by store first (tables/keys.py).
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Iterable

from app.settings import Settings
from app.timefmt import format_iso_s
from app.web.merge import as_of
from app.web.tick_cache import TickCache
from app.web.window_view import WindowChoice, WindowView
from tables import keys
from tables.schema import StatsTables
from tables.values import TotalsValue, WindowValue
from agents.rollups import rollups_of
from tables.windows import TumblingWindows


def revenue_json(revenue: dict[str, int]) -> dict[str, Any]:
    """``revenue``: the figure when one currency was seen (0 when none), null when several
    (currencies are never added together); ``revenue_by_currency``: every currency's."""
    single = next(iter(revenue.values())) if len(revenue) == 1 else (0 if not revenue else None)
    return {"revenue": single, "revenue_by_currency": revenue}


_iso_s = functools.lru_cache(maxsize=1024)(format_iso_s)  # window bounds repeat a lot


def window_json(start: int, end: int, stored: Any) -> dict[str, Any]:
    v = WindowValue.load(stored)
    return {"start": _iso_s(start), "end": _iso_s(end),
            "orders": v.orders, **revenue_json(v.revenue), "items": v.items}


def totals_json(stored: Any) -> dict[str, Any]:
    v = TotalsValue.load(stored)
    return {"orders": v.orders, **revenue_json(v.revenue), "items": v.items, "late": v.late}


class StatsReader:
    """Query the stats held by the partitions ``partitions()`` returns (the active ones)."""

    epoch = 1  # the state epoch of these tables, named in every answer (build_app sets it)

    def __init__(self, tables: StatsTables, settings: Settings,
                 partitions: Callable[[], Iterable[int]]) -> None:
        self.tables = tables
        self.settings = settings
        self.partitions = partitions
        self.windows = TumblingWindows(settings.window_size_s, settings.retention_s)
        self.choice = WindowChoice(self.windows, rollups_of(settings.windows))
        self._stores_cache = TickCache()  # local_stores: one scan per tick, not per request

    def _now_ms(self) -> int:
        return int(time.time() * 1000)

    def progress(self, partitions: Iterable[int]) -> dict[int, list[int]]:
        out = {}
        for p in partitions:
            value = self.tables.progress.get(p, p)
            if value is not None:
                out[p] = value
        return out

    def _find(self, store_id: str) -> tuple[int, list[int]] | None:
        for p in self.partitions():
            value = self.tables.totals.get(p, store_id)
            if value is not None:
                return p, value
        return None

    def _windows(self, partition: int, store_id: str, view: WindowView
                 ) -> list[tuple[int, list[int]]]:
        """All retained windows of a store of one size, oldest first."""
        prefix = keys.store_windows_prefix(store_id)
        now = self._now_ms()
        found = [(key[1], value)
                 for key, value in self.tables.windows.items_with_prefix(partition, prefix)
                 if key[0] == store_id and view.owns(key) and view.is_retained(key[1], now)]
        found.sort(key=lambda kv: kv[0])
        return found

    def _rollups_now(self, partition: int, store_id: str, now_ms: int) -> dict[str, Any]:
        """Each rollup's current window ("this hour", "today") of one store."""
        views = self.choice.rollup_views
        bounds = [v.bounds(now_ms) for v in views]
        stored = self.tables.windows.get_many(
            partition, [v.key(store_id, b[0]) for v, b in zip(views, bounds)])
        return {v.name: window_json(b[0], b[1], value)
                for v, b, value in zip(views, bounds, stored)}

    def store(self, store_id: str, limit: int, view: WindowView | None = None
              ) -> dict[str, Any] | None:
        found = self._find(store_id)
        if found is None:
            return None
        partition, totals = found
        view = view or self.choice.base
        windows = self._windows(partition, store_id, view)
        now = self._now_ms()
        current_start, current_end = view.bounds(now)
        current = next((v for s, v in windows if s == current_start), None)
        return {
            "store_id": store_id,
            **view.describe(),
            "current": window_json(current_start, current_end, current),
            "windows": [window_json(s, view.end_s(s), v) for s, v in reversed(windows[-limit:])]
            if limit else [],
            "current_by_window": self._rollups_now(partition, store_id, now),
            "totals": totals_json(totals),
            "as_of": as_of(self.progress([partition]), self.epoch),
        }

    def store_windows(self, store_id: str, from_ms: int, to_ms: int,
                      view: WindowView | None = None) -> dict[str, Any] | None:
        found = self._find(store_id)
        if found is None:
            return None
        partition, _ = found
        view = view or self.choice.base
        return {
            "store_id": store_id,
            **view.describe(),
            "windows": [window_json(s, view.end_s(s), v)
                        for s, v in self._windows(partition, store_id, view)
                        if from_ms <= s * 1000 < to_ms],
            "as_of": as_of(self.progress([partition]), self.epoch),
        }

    def local_stores(self, view: WindowView | None = None) -> dict[str, Any]:
        """``scan_local_stores``, computed at most once per tick (1 s) for a given set of
        partitions and size, shared by every caller; treat the answer as read-only."""
        partitions = sorted(self.partitions())
        view = view or self.choice.base
        return self._stores_cache.get_sync((tuple(partitions), view.name),
                                           lambda: self.scan_local_stores(partitions, view))

    def scan_local_stores(self, partitions: list[int] | None = None,
                          view: WindowView | None = None) -> dict[str, Any]:
        """Every store of this worker's partitions: current and previous window (of the
        base size or ``view``'s), lifetime totals."""
        view = view or self.choice.base
        current_start, current_end = view.bounds(self._now_ms())
        previous_start = view.previous_start(current_start)
        partitions = sorted(self.partitions()) if partitions is None else partitions
        stores = []
        for p in partitions:
            entries = list(self.tables.totals.items(p))
            currents = self.tables.windows.get_many(
                p, [view.key(store_id, current_start) for store_id, _ in entries])
            previous = self.tables.windows.get_many(
                p, [view.key(store_id, previous_start) for store_id, _ in entries])
            for (store_id, totals), current, prev in zip(entries, currents, previous):
                stores.append({"store_id": store_id,
                               "current": window_json(current_start, current_end, current),
                               "previous": window_json(previous_start, current_start, prev),
                               "totals": totals_json(totals)})
        return {"partitions": partitions, "stores": stores, **view.describe(),
                "epoch": self.epoch, "progress": {str(p): v for p, v in self.progress(partitions).items()}}
