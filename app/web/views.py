"""HTTP routes: the stats API (contract v1), dashboard, health, readiness and metrics.

One route per question, each answering JSON. Single-store questions are answered by the
worker that owns the store's partition (Faust's router decides, we forward); the all-stores
question fans out to every worker and merges their partitions, saying which are missing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from importlib import resources
from typing import Any, Awaitable, Callable

import aiohttp
import faust
import orjson
from faust.types import TP
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.metrics import REGISTRY
from app.settings import Settings
from app.timefmt import format_iso_ms
from app.web.params import ApiError, choice_param, int_param, store_id_param, time_param
from app.web.queries import StatsReader
from tables.state import PROGRESS, TOTALS

log = logging.getLogger(__name__)

ROUTED_HEADER = "X-Orderstats-Routed"
PEER_TIMEOUT_S = 5.0
SORT_KEYS = ("orders", "revenue")

Handler = Callable[..., Awaitable[Response]]


def json_response(view: View, body: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    resp = view.bytes(orjson.dumps(body), content_type="application/json", status=status)
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def api(handler: Handler) -> Handler:
    """Turn ApiError into its 4xx/5xx JSON and any other failure into a JSON 500, no trace."""

    @functools.wraps(handler)
    async def wrapped(view: View, request: Request, **kwargs: Any) -> Response:
        try:
            return await handler(view, request, **kwargs)
        except ApiError as exc:
            headers = {"Retry-After": "1"} if exc.status == 503 else None
            return json_response(view, exc.body(), exc.status, headers)
        except Exception:
            log.exception("internal error answering %s", request.url)
            return json_response(view, ApiError(500, "internal", "internal error, see the "
                                                "worker log").body(), 500)

    return wrapped


class Cluster:
    """Who owns what, and how to ask them: a thin layer over Faust's router and assignor."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S))
        return self._session

    def active_partitions(self) -> list[int]:
        topic = self.settings.orders_topic
        return sorted(tp.partition for tp in self.app.assignor.assigned_actives()
                      if tp.topic == topic)

    def standby_partitions(self) -> list[int]:
        # Standbys are changelog partitions; the progress table's stand for the partition.
        topic = f"{self.app.conf.id}-{PROGRESS}-changelog"
        return sorted(tp.partition for tp in self.app.assignor.assigned_standbys()
                      if tp.topic == topic)

    def log_end(self, partition: int) -> int | None:
        try:
            return self.app.consumer.highwater(TP(self.settings.orders_topic, partition))
        except Exception:  # not assigned here (any more): unknown, not an error
            return None

    def recovering(self) -> bool:
        return bool(self.app.in_recovery) or not self.app.tables.recovery.completed.is_set()

    def ready(self) -> bool:
        return (not self.app.rebalancing
                and self.app.tables.recovery.completed.is_set()
                and bool(self.app.consumer.assignment()))

    def self_url(self) -> str:
        return str(self.app.conf.canonical_url).rstrip("/")

    def owner_of(self, store_id: str) -> str:
        try:
            return str(self.app.router.key_store(TOTALS, store_id)).rstrip("/")
        except KeyError:
            raise ApiError(503, "rebalancing", "partition ownership is changing, retry") from None

    def peers(self) -> list[str]:
        """Web URLs of every worker the assignor knows (this one included)."""
        urls = {str(url).rstrip("/") for url in self.app.router.tables_metadata()}
        urls.add(self.self_url())
        return sorted(urls)

    async def forward(self, url: str, request: Request) -> tuple[int, bytes]:
        target = url + request.path_qs
        try:
            async with self.session.get(target, headers={ROUTED_HEADER: "1"}) as resp:
                return resp.status, await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise ApiError(503, "owner_unreachable",
                           f"the worker owning this store ({url}) did not answer: "
                           f"{type(exc).__name__}") from None

    async def fetch_json(self, url: str) -> Any:
        async with self.session.get(url, headers={ROUTED_HEADER: "1"}) as resp:
            resp.raise_for_status()
            return orjson.loads(await resp.read())


def register_views(app: faust.App, reader: StatsReader, cluster: Cluster,
                   settings: Settings) -> None:
    """Add the product's routes to ``app``'s web server."""

    async def routed(view: View, request: Request, store_id: str,
                     local: Callable[[], Response]) -> Response:
        if not cluster.ready() and request.headers.get(ROUTED_HEADER) is None:
            raise ApiError(503, "not_ready", "worker is recovering or rebalancing, retry")
        owner = cluster.owner_of(store_id)
        if owner == cluster.self_url() or request.headers.get(ROUTED_HEADER):
            return local()
        status, body = await cluster.forward(owner, request)
        if status == 503:
            raise ApiError(503, "rebalancing", "the owning worker is not ready, retry")
        return view.bytes(body, content_type="application/json", status=status)

    def not_found(store_id: str) -> ApiError:
        return ApiError(404, "store_not_found", f"no order of store {store_id!r} has been seen")

    @app.page("/api/stores/{store_id}")
    class StoreView(View):
        """One store: current window, recent windows (newest first), totals, freshness."""

        @api
        async def get(self, request: Request, store_id: str) -> Response:
            store_id = store_id_param(store_id)
            limit = int_param(request.query, "limit", 60, 0, 10_000)

            def local() -> Response:
                body = reader.store(store_id, limit)
                if body is None:
                    raise not_found(store_id)
                return json_response(self, body)

            return await routed(self, request, store_id, local)

    @app.page("/api/stores/{store_id}/windows")
    class StoreWindowsView(View):
        """One store's windows starting in [from, to), oldest first."""

        @api
        async def get(self, request: Request, store_id: str) -> Response:
            store_id = store_id_param(store_id)
            start, end = time_param(request.query, "from"), time_param(request.query, "to")
            if end <= start:
                raise ApiError(400, "bad_parameter", "to must be later than from")

            def local() -> Response:
                body = reader.store_windows(store_id, start, end)
                if body is None:
                    raise not_found(store_id)
                return json_response(self, body)

            return await routed(self, request, store_id, local)

    @app.page("/api/_local/stores")
    class LocalStoresView(View):
        """Internal: this worker's partitions only (the all-stores fan-out calls it)."""

        @api
        async def get(self, request: Request) -> Response:
            if not cluster.ready():
                raise ApiError(503, "not_ready", "worker is recovering or rebalancing")
            return json_response(self, reader.local_stores())

    @app.page("/api/stores")
    class StoresView(View):
        """Every store: current window and lifetime totals, merged from all workers."""

        @api
        async def get(self, request: Request) -> Response:
            sort = choice_param(request.query, "sort", SORT_KEYS)
            limit = int_param(request.query, "limit", 100, 1, 100_000)
            if not cluster.ready():
                raise ApiError(503, "not_ready", "worker is recovering or rebalancing, retry")
            parts = await fan_out(cluster, "/api/_local/stores", reader.local_stores)
            return json_response(self, merge_parts(parts, settings, sort, limit))

    @app.page("/api/_local/status")
    class LocalStatusView(View):
        """Internal: this worker's partitions, lag, watermarks and recovery state."""

        @api
        async def get(self, request: Request) -> Response:
            return json_response(self, local_status(cluster, reader))

    @app.page("/api/cluster")
    class ClusterView(View):
        """Every worker: its partitions (active, standby), lag, watermark, recovery."""

        @api
        async def get(self, request: Request) -> Response:
            statuses = await fan_out(cluster, "/api/_local/status",
                                     lambda: local_status(cluster, reader))
            return json_response(self, merge_cluster(statuses, settings))

    @app.page("/health")
    class HealthView(View):
        """The process is alive and serving HTTP."""

        async def get(self, request: Request) -> Response:
            return json_response(self, {"status": "ok"})

    @app.page("/ready")
    class ReadyView(View):
        """200 once recovery is done and partitions are assigned, else 503."""

        async def get(self, request: Request) -> Response:
            ready = cluster.ready()
            return json_response(self, {"ready": ready,
                                        "partitions": cluster.active_partitions()},
                                 200 if ready else 503)

    @app.page("/metrics")
    class MetricsView(View):
        """Prometheus exposition."""

        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST
                              .split(";")[0])

    dashboard = resources.files("app.web").joinpath("dashboard.html").read_text()

    @app.page("/")
    class DashboardView(View):
        """The live page: polls /api/stores every second."""

        async def get(self, request: Request) -> Response:
            return self.html(dashboard)


async def fan_out(cluster: Cluster, path: str, local: Callable[[], Any]) -> dict[str, Any]:
    """Ask every worker; a worker that fails is recorded as such, not hidden."""
    results: dict[str, Any] = {}

    async def ask(url: str) -> None:
        if url == cluster.self_url():
            results[url] = local()
            return
        try:
            results[url] = await cluster.fetch_json(url + path)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            results[url] = {"error": f"{type(exc).__name__}: {exc}"}

    await asyncio.gather(*(ask(url) for url in cluster.peers()))
    return results


def local_status(cluster: Cluster, reader: StatsReader) -> dict[str, Any]:
    """This worker: its partitions (active, standby), their lag and watermark, recovery."""
    active, standby = cluster.active_partitions(), cluster.standby_partitions()
    progress = reader.progress(sorted(set(active) | set(standby)))
    partitions = {}
    for p in sorted(set(active) | set(standby)):
        last, watermark = (progress[p][0], progress[p][1]) if p in progress else (-1, 0)
        end = cluster.log_end(p) if p in active else None
        partitions[str(p)] = {
            "role": "active" if p in active else "standby",
            "last_offset": last, "log_end": end,
            "lag": None if end is None else max(0, end - (last + 1)),
            "watermark": format_iso_ms(watermark) if watermark else None}
    return {"url": cluster.self_url(), "ready": cluster.ready(),
            "recovering": cluster.recovering(), "active": active, "standby": standby,
            "partitions": partitions}


def merge_cluster(statuses: dict[str, Any], settings: Settings) -> dict[str, Any]:
    owners: dict[int, dict[str, Any]] = {p: {"active": None, "standby": []}
                                          for p in range(settings.partitions)}
    for url, st in sorted(statuses.items()):
        if "error" in st:
            continue
        for p, info in st["partitions"].items():
            entry = owners[int(p)]
            if info["role"] == "active":
                entry.update(active=url, lag=info["lag"], last_offset=info["last_offset"],
                             log_end=info["log_end"], watermark=info["watermark"])
            else:
                entry["standby"].append(url)
    unowned = sorted(p for p, e in owners.items() if e["active"] is None)
    return {"workers": [{"url": url, **st} for url, st in sorted(statuses.items())],
            "partitions": {str(p): e for p, e in owners.items()},
            "complete": not unowned, "unowned_partitions": unowned,
            "total_lag": sum(e.get("lag") or 0 for e in owners.values())}


def merge_parts(parts: dict[str, Any], settings: Settings, sort: str,
                limit: int) -> dict[str, Any]:
    """Merge per-worker answers; each partition is taken once, absent ones are named."""
    seen: set[int] = set()
    stores: list[dict] = []
    progress: dict[int, list[int]] = {}
    for url in sorted(parts):
        part = parts[url]
        if "error" in part:
            continue
        if seen.intersection(part["partitions"]):
            continue  # an overlap means a rebalance in flight; the first answer stands
        seen.update(part["partitions"])
        stores.extend(part["stores"])
        progress.update({int(p): v for p, v in part["progress"].items()})
    stores.sort(key=lambda s: (-s["totals"][sort], s["store_id"]))
    missing = sorted(set(range(settings.partitions)) - seen)
    return {
        "sort": sort,
        "count": len(stores),
        "stores": stores[:limit],
        "window_size_s": settings.window_size_s,
        "complete": not missing,
        "missing_partitions": missing,
        "unreachable_workers": sorted(u for u, p in parts.items() if "error" in p),
        "as_of": StatsReader.as_of(progress),
    }
