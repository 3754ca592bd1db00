"""HTTP routes: one view per question (contract v1), plus the page, health and metrics.

Single-store questions are answered by the worker that owns the store's partition (Faust's
router decides, app/web/cluster.py forwards); the all-stores question fans out to every
worker and merges their partitions (app/web/merge.py), saying which are missing.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import faust
import orjson
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.faust_ext.web_access import install_web_access
from app.faust_ext.web_errors import install_json_unmatched
from app.faust_ext.web_stream import DISCONNECTED, open_event_stream
from app.metrics import REGISTRY, WEB_REQUESTS
from app.settings import Settings
from app.web.assets import CSP, HEADERS, STATIC_PREFIX, Asset, load_assets, render_page
from app.web.cluster import ROUTED_HEADER, Cluster
from app.web.live import TOP_DEFAULT, TOP_MAX, LiveSource
from app.web.merge import merge_cluster
from app.web.params import ApiError, choice_param, int_param, store_id_param, time_param
from app.web.reader import StatsReader
from app.web.stream import Broadcaster

log = logging.getLogger(__name__)

SORT_KEYS = ("orders", "revenue")

Handler = Callable[..., Awaitable[Response]]


@dataclass
class Web:
    """What the views answer from; one per app (``app.orderstats_web``)."""

    reader: StatsReader
    cluster: Cluster
    settings: Settings
    page: str
    live: LiveSource | None = None
    broadcaster: Broadcaster | None = None
    assets: dict[str, Asset] = field(default_factory=dict)


def web(view: View) -> Web:
    return view.app.orderstats_web


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


async def routed(view: View, request: Request, store_id: str,
                 local: Callable[[], Any]) -> Response:
    """Answer locally if this worker owns ``store_id``, else forward to its owner."""
    cluster = web(view).cluster
    if not cluster.ready():  # forwarded or not: a recovering table would answer 404 or less
        raise ApiError(503, "not_ready", "worker is recovering or rebalancing, retry")
    owner = cluster.owner_of(store_id)
    if owner == cluster.self_url() or request.headers.get(ROUTED_HEADER):
        # Answer from the local table only while its partition is active here: a peer's
        # view of the owner can be a rebalance behind (it then answers 503, Retry-After).
        if cluster.routing.partition(store_id) not in cluster.active_partitions():
            raise ApiError(503, "rebalancing", "partition ownership is changing, retry")
        body = local()
        if body is None:
            raise ApiError(404, "store_not_found",
                           f"no order of store {store_id!r} has been seen")
        return json_response(view, body)
    status, raw = await cluster.forward(owner, request)
    if status == 503:
        raise ApiError(503, "rebalancing", "the owning worker is not ready, retry")
    return view.bytes(raw, content_type="application/json", status=status)


class StoreView(View):
    """One store: current window, recent windows (newest first), totals, freshness."""

    @api
    async def get(self, request: Request, store_id: str) -> Response:
        store_id = store_id_param(store_id)
        limit = int_param(request.query, "limit", 60, 0, 10_000)
        view = web(self).reader.choice.pick(request.query.get("window"))
        return await routed(self, request, store_id,
                            lambda: web(self).reader.store(store_id, limit, view))


class StoreWindowsView(View):
    """One store's windows starting in [from, to), oldest first."""

    @api
    async def get(self, request: Request, store_id: str) -> Response:
        store_id = store_id_param(store_id)
        start, end = time_param(request.query, "from"), time_param(request.query, "to")
        if end <= start:
            raise ApiError(400, "bad_parameter", "to must be later than from")
        view = web(self).reader.choice.pick(request.query.get("window"))
        return await routed(self, request, store_id,
                            lambda: web(self).reader.store_windows(store_id, start, end, view))


class LocalStoresView(View):
    """Internal: this worker's partitions only (the all-stores fan-out calls it)."""

    @api
    async def get(self, request: Request) -> Response:
        if not web(self).cluster.ready():
            raise ApiError(503, "not_ready", "worker is recovering or rebalancing")
        reader = web(self).reader
        return json_response(self, reader.local_stores(
            reader.choice.pick(request.query.get("window"))))


class StoresView(View):
    """Every store: current window and lifetime totals, merged from all workers."""

    @api
    async def get(self, request: Request) -> Response:
        sort = choice_param(request.query, "sort", SORT_KEYS)
        limit = int_param(request.query, "limit", 100, 1, 100_000)
        w = web(self)
        view = w.reader.choice.pick(request.query.get("window"))
        if not w.cluster.ready():
            raise ApiError(503, "not_ready", "worker is recovering or rebalancing, retry")
        return json_response(self, await w.live.stores(sort, limit, view))  # shared per tick


class LocalStatusView(View):
    """Internal: this worker's partitions, lag, watermarks and recovery state."""

    @api
    async def get(self, request: Request) -> Response:
        w = web(self)
        return json_response(self, w.cluster.local_status(w.reader))


class ClusterView(View):
    """Every worker: its partitions (active, standby), lag, watermark, recovery."""

    @api
    async def get(self, request: Request) -> Response:
        w = web(self)
        statuses = await w.cluster.fan_out("/api/_local/status",
                                           lambda: w.cluster.local_status(w.reader))
        return json_response(self, {**merge_cluster(statuses, w.settings),
                                    "rebuild": await w.cluster.rebuild_status()})


class HealthView(View):
    """The process is alive and serving HTTP."""

    async def get(self, request: Request) -> Response:
        return json_response(self, {"status": "ok"})


class ReadyView(View):
    """200 once recovery is done, partitions are assigned and Kafka is reachable, else 503
    with the reason (a worker cut off from Kafka serves figures that no longer move)."""

    async def get(self, request: Request) -> Response:
        cluster = web(self).cluster
        kafka = getattr(self.app, "orderstats_kafka", None)  # app.kafka.liveness, if wired
        reason = kafka.reason if kafka is not None and not kafka.up else ""
        ready = cluster.ready() and not reason
        body = {"ready": ready, "partitions": cluster.active_partitions()}
        if reason:
            body["reason"] = reason
        return json_response(self, body, 200 if ready else 503)


class MetricsView(View):
    """Prometheus exposition."""

    async def get(self, request: Request) -> Response:
        w = web(self)
        try:
            w.cluster.refresh_metrics(w.reader)
        except Exception:  # a scrape mid-rebalance: serve the counters, the gauges as they were
            log.debug("refreshing the scrape-time gauges failed", exc_info=True)
        return self.bytes(generate_latest(REGISTRY),
                          content_type=CONTENT_TYPE_LATEST.split(";")[0])


HEARTBEAT_S = 15.0  # an SSE comment this often when nothing changed (finds gone viewers)


def live_topics(query: Any) -> list[tuple]:
    """The stream's topics from ``?top=N&store=ID``: the top-N always, one store on request."""
    topics: list[tuple] = [("top", int_param(query, "top", TOP_DEFAULT, 1, TOP_MAX))]
    if query.get("store"):
        topics.append(("store", store_id_param(query["store"])))
    return topics


class StreamView(View):
    """Server-Sent Events: the top-N each second it changes; ?store=ID adds that store."""

    @api
    async def get(self, request: Request) -> Response:
        w = web(self)
        topics = live_topics(request.query)
        resp = await open_event_stream(request)
        if request.method == "HEAD":
            return resp  # headers only: no body would ever reach the viewer
        sub = w.broadcaster.subscribe(topics)
        try:
            await resp.write(b"retry: 2000\n\n")
            while not sub.closed:
                frames = await sub.next(timeout=HEARTBEAT_S)
                await resp.write(b"".join(frames) if frames else b": keep-alive\n\n")
        except DISCONNECTED:
            pass  # the viewer went away
        finally:
            w.broadcaster.unsubscribe(sub)
        return resp


class LiveView(View):
    """What the stream would send now, as one JSON object {top, store} (the page polls it)."""

    @api
    async def get(self, request: Request) -> Response:
        live = web(self).live
        body: dict[str, Any] = {}
        for kind, arg in live_topics(request.query):
            body[kind] = (await live.compute((kind, arg)))[1]
        return json_response(self, body)


class StaticView(View):
    """The page's scripts, styles and vendored chart library."""

    async def get(self, request: Request, path: str) -> Response:
        asset = web(self).assets.get(path)
        if asset is None:
            return json_response(self, ApiError(404, "not_found", "no such file").body(), 404)
        resp = self.bytes(asset.body, content_type=asset.content_type.split(";")[0])
        resp.headers.update({"Content-Type": asset.content_type, **HEADERS})
        return resp


OPENAPI = (importlib.resources.files("app.web") / "openapi.json").read_bytes()


class OpenApiView(View):
    """The API's OpenAPI 3.1 description (app/web/openapi.json)."""

    async def get(self, request: Request) -> Response:
        return self.bytes(OPENAPI, content_type="application/json")


class PageView(View):
    """The live report page (static; it streams from /api/stream, else polls /api/live)."""

    async def get(self, request: Request) -> Response:
        resp = self.html(web(self).page)
        resp.headers.update({"Content-Security-Policy": CSP, **HEADERS})
        return resp


ROUTES: dict[str, type[View]] = {
    "/api/stores/{store_id}": StoreView,
    "/api/stores/{store_id}/windows": StoreWindowsView,
    "/api/_local/stores": LocalStoresView,
    "/api/stores": StoresView,
    "/api/_local/status": LocalStatusView,
    "/api/cluster": ClusterView,
    "/health": HealthView,
    "/ready": ReadyView,
    "/metrics": MetricsView,
    "/api/stream": StreamView,
    "/api/live": LiveView,
    "/api/openapi.json": OpenApiView,
    STATIC_PREFIX + "{path:.+}": StaticView,
    "/": PageView,
}


def timed(view: type[View], route: str) -> type[View]:
    """``view`` recording orderstats_web_request_seconds{route, status} per request.

    The label is the route template (``/api/stores/{store_id}``), never the requested path,
    so the series stay few whatever clients ask for.
    """

    async def dispatch(self: View, request: Any) -> Any:
        started = time.perf_counter()
        status = "500"
        try:
            response = await view.dispatch(self, request)
            status = str(getattr(response, "status", None) or 500)
            return response
        finally:
            WEB_REQUESTS.labels(route, status).observe(time.perf_counter() - started)

    return type(view.__name__, (view,), {"dispatch": dispatch, "__doc__": view.__doc__,
                                         "__module__": view.__module__})


def register_views(app: faust.App, reader: StatsReader, cluster: Cluster,
                   settings: Settings) -> None:
    """Add the product's routes to ``app``'s web server."""
    live = LiveSource(reader, cluster, settings)
    broadcaster = Broadcaster(live.compute)
    app.orderstats_web = Web(reader, cluster, settings, render_page(settings, cluster.self_url()),
                             live, broadcaster, load_assets())

    @app.on_before_shutdown.connect
    async def end_streams(app: faust.App, **kwargs: object) -> None:
        await broadcaster.close()  # open streams would otherwise hold up the web server's stop
    for path, view in ROUTES.items():
        app.page(path)(timed(view, path))
    install_json_unmatched(app)  # unknown routes answer the JSON error shape, 404
    # first of all: tokens, the page's cookie, CORS, security headers (README, "Security")
    install_web_access(app, settings.access, settings.cors, CSP)
