"""What the live page shows, as messages: the all-stores top-N and one store's current window.

``GET /api/stream`` pushes these (app/web/stream.py decides when), ``GET /api/live`` answers
the same on request (the page polls it when it cannot stream). ``top_message`` is pure.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import aiohttp

from app.currency import exponent
from app.settings import Settings
from app.timefmt import format_iso_s
from app.web.cluster import Cluster
from app.web.merge import merge_parts
from app.web.params import ApiError
from app.web.reader import StatsReader
from app.web.tick_cache import TickCache
from app.web.window_view import WindowView

TOP_CURRENT = 10  # bars in each "top stores in the current window" chart
TOP_DEFAULT, TOP_MAX = 100, 1000  # table rows: the busiest stores by lifetime orders
ALL = 10**9


def currencies(codes: Any) -> dict[str, int | None]:
    """Minor-unit exponent of each currency code (null for a code that has none, e.g. XXX)."""
    out: dict[str, int | None] = {}
    for code in sorted(set(codes)):
        try:
            out[code] = exponent(code)
        except ValueError:
            out[code] = None
    return out


def _codes(*figures: dict[str, Any]) -> set[str]:
    return {code for f in figures for code in f["revenue_by_currency"]}


def top_message(merged: dict[str, Any], top: int, now_s: int | None = None) -> dict[str, Any]:
    """From every store (``merge_parts`` sorted by lifetime orders, unlimited): the table's
    ``top`` rows and, for the current window, the busiest stores by orders and, per
    currency, by revenue."""
    stores = merged["stores"]
    size = merged["window_size_s"]
    if stores:
        window = {"start": stores[0]["current"]["start"], "end": stores[0]["current"]["end"]}
    else:
        now_s = int(time.time()) if now_s is None else now_s
        start = now_s - now_s % size
        window = {"start": format_iso_s(start), "end": format_iso_s(start + size)}
    by_orders = sorted((s for s in stores if s["current"]["orders"]),
                       key=lambda s: (-s["current"]["orders"], s["store_id"]))
    by_revenue: dict[str, list[tuple[int, str]]] = {}
    for s in stores:
        for code, amount in s["current"]["revenue_by_currency"].items():
            if amount:
                by_revenue.setdefault(code, []).append((amount, s["store_id"]))
    rows = stores[:top]
    return {
        "window_size_s": size,
        "window": window,
        "count": merged["count"],
        "stores": rows,
        "top_current": {
            "orders": [{"store_id": s["store_id"], "orders": s["current"]["orders"]}
                       for s in by_orders[:TOP_CURRENT]],
            "revenue": {code: [{"store_id": sid, "revenue": amount}
                               for amount, sid in sorted(pairs, key=lambda p: (-p[0], p[1]))
                               [:TOP_CURRENT]]
                        for code, pairs in sorted(by_revenue.items())}},
        "currencies": currencies(_codes(*(f for s in rows for f in (s["current"], s["totals"])))
                                 | set(by_revenue)),
        "complete": merged["complete"],
        "missing_partitions": merged["missing_partitions"],
        "unreachable_workers": merged["unreachable_workers"],
        "as_of": merged["as_of"],
    }


def store_message(body: dict[str, Any]) -> dict[str, Any]:
    """One store (the ``GET /api/stores/{id}?limit=2`` answer): current and previous window,
    lifetime totals, freshness."""
    size = body["window_size_s"]
    current = body["current"]
    previous = next((w for w in body["windows"] if w["start"] < current["start"]), None)
    if previous is None or previous["end"] != current["start"]:  # sparse: no orders then
        previous = {"start": None, "end": current["start"], "orders": 0, "revenue": 0,
                    "revenue_by_currency": {}, "items": 0}
    rollups = body.get("current_by_window", {})
    return {"store_id": body["store_id"], "window_size_s": size, "current": current,
            "previous": previous, "totals": body["totals"], "current_by_window": rollups,
            "currencies": currencies(_codes(current, previous, body["totals"],
                                            *rollups.values())),
            "as_of": body["as_of"]}


def error_message(exc: ApiError, **extra: Any) -> dict[str, Any]:
    return {**extra, **exc.body(), "as_of": None}


class LiveSource:
    """Computes the page's messages from this worker, asking the others as the API does."""

    def __init__(self, reader: StatsReader, cluster: Cluster, settings: Settings) -> None:
        self.reader = reader
        self.cluster = cluster
        self.settings = settings
        self.cache = TickCache()  # every worker's stores, merged answers: once per tick

    async def parts(self, view: WindowView | None = None) -> dict[str, Any]:
        """Every worker's ``/api/_local/stores`` (this one's read locally), once per tick
        per window size."""
        view = view or self.reader.choice.base
        path = "/api/_local/stores" + ("" if view is self.reader.choice.base
                                       else f"?window={view.name}")
        return await self.cache.get(("parts", view.name), lambda: self.cluster.fan_out(
            path, lambda: self.reader.local_stores(view)))

    async def stores(self, sort: str, limit: int, view: WindowView | None = None
                     ) -> dict[str, Any]:
        """The ``GET /api/stores`` answer, merged once per tick per (sort, limit, size)."""
        view = view or self.reader.choice.base

        async def merged() -> dict[str, Any]:
            return {**merge_parts(await self.parts(view), self.settings, sort, limit,
                                self.reader.epoch),
                    **view.describe()}
        return await self.cache.get(("stores", sort, limit, view.name), merged)

    async def top(self, top: int) -> dict[str, Any]:
        if not self.cluster.ready():
            return error_message(ApiError(503, "not_ready",
                                          "worker is recovering or rebalancing, retry"))
        return top_message(await self.stores("orders", ALL), top)

    async def store(self, store_id: str) -> dict[str, Any]:
        try:
            if not self.cluster.ready():
                raise ApiError(503, "not_ready", "worker is recovering or rebalancing, retry")
            owner = self.cluster.owner_of(store_id)
            if owner == self.cluster.self_url():
                body = self.reader.store(store_id, 2)
            else:
                body = await self._remote_store(owner, store_id)
            if body is None:
                raise ApiError(404, "store_not_found",
                               f"no order of store {store_id!r} has been seen")
            return store_message(body)
        except ApiError as exc:
            return error_message(exc, store_id=store_id)

    async def _remote_store(self, owner: str, store_id: str) -> dict[str, Any] | None:
        try:
            return await self.cluster.fetch_json(
                f"{owner}/api/stores/{quote(store_id, safe='')}?limit=2")
        except aiohttp.ClientResponseError as exc:
            if exc.status == 404:
                return None
            raise ApiError(503, "rebalancing", "the owning worker is not ready, retry") \
                from None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ApiError(503, "owner_unreachable",
                           f"the worker owning this store ({owner}) did not answer: "
                           f"{type(exc).__name__}") from None

    async def compute(self, topic: tuple) -> tuple[str, dict[str, Any]]:
        """The broadcaster's ``compute``: topics are ("top", n) and ("store", store_id)."""
        kind, arg = topic
        if kind == "top":
            return "top", await self.top(arg)
        return "store", await self.store(arg)
