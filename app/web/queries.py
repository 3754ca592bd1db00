"""Answers to the API's questions from this worker's own partitions.

Reads go straight to the partitions' RocksDB stores (tables.state.PartitionStore); a store's
windows are one prefix scan, since window keys sort by store first.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

import orjson

from app.settings import Settings
from app.timefmt import format_iso_ms, format_iso_s
from tables.aggregate import T_ITEMS, T_LATE, T_ORDERS, T_REVENUE, W_ITEMS, W_ORDERS, W_REVENUE
from tables.state import StatsTables
from tables.windows import is_retained, late_cutoff_ms, window_start_s


def window_json(start: int, size: int, value: list[int] | None) -> dict[str, Any]:
    v = value or [0, 0, 0]
    return {"start": format_iso_s(start), "end": format_iso_s(start + size),
            "orders": v[W_ORDERS], "revenue": v[W_REVENUE], "items": v[W_ITEMS]}


def totals_json(value: list[int]) -> dict[str, int]:
    return {"orders": value[T_ORDERS], "revenue": value[T_REVENUE], "items": value[T_ITEMS],
            "late": value[T_LATE]}


class StatsReader:
    """Query the stats held by the partitions ``partitions()`` returns (the active ones)."""

    def __init__(self, tables: StatsTables, settings: Settings,
                 partitions: Callable[[], Iterable[int]]) -> None:
        self.tables = tables
        self.settings = settings
        self.partitions = partitions

    def _now_ms(self) -> int:
        return int(time.time() * 1000)

    def progress(self, partitions: Iterable[int]) -> dict[int, list[int]]:
        out = {}
        for p in partitions:
            value = self.tables.progress.get(p, p)
            if value is not None:
                out[p] = value
        return out

    @staticmethod
    def as_of(progress: dict[int, list[int]]) -> dict[str, Any]:
        """How fresh an answer is: highest event time seen and the last offset reflected."""
        watermark = max((v[1] for v in progress.values()), default=0)
        return {"watermark": format_iso_ms(watermark) if watermark else None,
                "offsets": {str(p): v[0] for p, v in sorted(progress.items())}}

    def _find(self, store_id: str) -> tuple[int, list[int]] | None:
        for p in self.partitions():
            value = self.tables.totals.get(p, store_id)
            if value is not None:
                return p, value
        return None

    def _windows(self, partition: int, store_id: str) -> list[tuple[int, list[int]]]:
        """All retained windows of a store, oldest first."""
        prefix = orjson.dumps([store_id])[:-1] + b","
        size = self.settings.window_size_s
        cutoff = late_cutoff_ms(self._now_ms(), self.settings.retention_s)
        found = [(key[1], value)
                 for key, value in self.tables.windows.items_with_prefix(partition, prefix)
                 if key[0] == store_id and is_retained(key[1], size, cutoff)]
        found.sort(key=lambda kv: kv[0])
        return found

    def store(self, store_id: str, limit: int) -> dict[str, Any] | None:
        found = self._find(store_id)
        if found is None:
            return None
        partition, totals = found
        size = self.settings.window_size_s
        windows = self._windows(partition, store_id)
        current_start = window_start_s(self._now_ms(), size)
        current = next((v for s, v in windows if s == current_start), None)
        return {
            "store_id": store_id,
            "window_size_s": size,
            "current": window_json(current_start, size, current),
            "windows": [window_json(s, size, v) for s, v in reversed(windows[-limit:])]
            if limit else [],
            "totals": totals_json(totals),
            "as_of": self.as_of(self.progress([partition])),
        }

    def store_windows(self, store_id: str, from_ms: int, to_ms: int) -> dict[str, Any] | None:
        found = self._find(store_id)
        if found is None:
            return None
        partition, _ = found
        size = self.settings.window_size_s
        return {
            "store_id": store_id,
            "window_size_s": size,
            "windows": [window_json(s, size, v) for s, v in self._windows(partition, store_id)
                        if from_ms <= s * 1000 < to_ms],
            "as_of": self.as_of(self.progress([partition])),
        }

    def local_stores(self) -> dict[str, Any]:
        """Every store of this worker's partitions: current window and lifetime totals."""
        size = self.settings.window_size_s
        current_start = window_start_s(self._now_ms(), size)
        partitions = sorted(self.partitions())
        stores = []
        for p in partitions:
            entries = list(self.tables.totals.items(p))
            currents = self.tables.windows.get_many(
                p, [[store_id, current_start] for store_id, _ in entries])
            for (store_id, totals), current in zip(entries, currents):
                stores.append({"store_id": store_id,
                               "current": window_json(current_start, size, current),
                               "totals": totals_json(totals)})
        return {"partitions": partitions, "stores": stores,
                "progress": {str(p): v for p, v in self.progress(partitions).items()}}
