"""The gateway's HTTP server: POST /orders, POST /orders/batch, /health, /ready, /metrics.

Every answer is JSON; errors have the workers' shape ``{"error": {"code", "message"}}``
(unknown routes and methods too). 202 means the broker acknowledged every listed order;
400 lists each invalid line (the valid ones of the same request are accepted and listed);
401 without a known key, 403 when the key may not submit for a store (nothing of that
request is produced); 413 above the size or line limit; 503 with Retry-After while the
broker is unreachable.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.access import bearer
from app.gateway.auth import KeyRing, Principal, presented_key
from app.gateway.ingest import (BatchTooLarge, OrderSink, Unavailable, Valid, now_ms,
                                split_ndjson, validate)
from app.gateway.metrics import GatewayMetrics
from app.settings import Settings

log = logging.getLogger(__name__)

RETRY_AFTER_S = "1"

SETTINGS = web.AppKey("settings", Settings)
KEYS = web.AppKey("keys", KeyRing)
SINK = web.AppKey("sink", OrderSink)
METRICS = web.AppKey("metrics", GatewayMetrics)


class ApiError(Exception):
    """Answered as ``{"error": {"code", "message", ...extra}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self) -> web.Response:
        body: dict[str, Any] = {"error": {"code": self.code, "message": self.message}}
        body["error"].update(self.extra.pop("error_extra", {}))
        body.update(self.extra)
        headers = {"Retry-After": RETRY_AFTER_S} if self.status == 503 else {}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="orderstats"'
        return json_response(body, self.status, headers)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type="application/json")


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


@web.middleware
async def errors_and_metrics(request: web.Request,
                             handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                             ) -> web.StreamResponse:
    started = time.perf_counter()
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    try:
        response = await handler(request)
    except ApiError as exc:
        response = exc.response()
    except web.HTTPException as exc:  # aiohttp's own: unknown route, method, body too large
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = {404: f"no route {request.method} {request.path}",
                   405: f"{request.method} is not allowed on {request.path}",
                   413: "the request body is larger than ORDERSTATS_GATEWAY_BATCH_MAX_BYTES"
                   }.get(exc.status, exc.reason)
        response = ApiError(exc.status, code, message).response()
    except Exception:
        log.exception("gateway: internal error answering %s %s", request.method, request.path)
        response = ApiError(500, "internal", "internal error, see the gateway log").response()
    m = request.app[METRICS]
    m.requests.labels(route, str(response.status)).inc()
    m.latency.labels(route).observe(time.perf_counter() - started)
    return response


def principal(request: web.Request) -> Principal:
    found = request.app[KEYS].authenticate(presented_key(
        request.headers.get("Authorization"), request.headers.get("X-API-Key")))
    if found is None:  # never echo the key, nor say which part was wrong
        raise ApiError(401, "unauthorized", "a valid API key is required "
                       "(Authorization: Bearer KEY, or X-API-Key: KEY)")
    return found


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", f"the body is {request.content_length} bytes, more "
                       f"than {limit} (ORDERSTATS_GATEWAY_BATCH_MAX_BYTES)")
    return await request.read()  # client_max_size = limit: a longer body raises 413


async def post_order(request: web.Request) -> web.Response:
    who = principal(request)
    settings = request.app[SETTINGS]
    body = await read_body(request, settings.gateway_batch_max_bytes)
    if not body.strip():
        raise ApiError(400, "empty", "the body holds no order")
    return await ingest(request, who, [(1, body.strip())], single=True)


async def post_batch(request: web.Request) -> web.Response:
    who = principal(request)
    settings = request.app[SETTINGS]
    body = await read_body(request, settings.gateway_batch_max_bytes)
    try:
        lines = split_ndjson(body, settings.gateway_batch_max_lines)
    except BatchTooLarge as exc:
        raise ApiError(413, "too_many_lines", str(exc)) from None
    if not lines:
        raise ApiError(400, "empty", "the body holds no order (NDJSON: one order per line)")
    return await ingest(request, who, lines, single=False)


async def ingest(request: web.Request, who: Principal, lines: list[tuple[int, bytes]],
                 single: bool) -> web.Response:
    app = request.app
    m, sink = app[METRICS], app[SINK]
    stamp = now_ms()
    valid, invalid = validate(lines, app[SETTINGS], stamp)
    forbidden = [v for v in valid if not who.may_submit(v.order.store_id)]
    if forbidden:
        m.rejected.labels("forbidden").inc(len(lines))
        stores = sorted({v.order.store_id for v in forbidden})
        log.warning("gateway: %s may not submit for %d store(s); request refused", who.name,
                    len(stores))
        raise ApiError(403, "forbidden", "this API key may not submit orders for store(s) "
                       + ", ".join(stores[:10]) + ("..." if len(stores) > 10 else "")
                       + "; nothing of this request was accepted",
                       error_extra={"items": [{"line": v.line, "store_id": v.order.store_id}
                                              for v in forbidden]})
    accepted: list[Valid] = []
    if valid:
        try:
            accepted, problem = await sink.send(valid, stamp)
        except Unavailable as exc:
            problem = str(exc)
        m.accepted.inc(len(accepted))
        if problem:
            m.produce_errors.inc()
            m.rejected.labels("unavailable").inc(len(valid) - len(accepted))
            m.rejected.labels("invalid").inc(len(invalid))
            raise ApiError(503, "kafka_unavailable", f"orders cannot be stored now ({problem}); "
                           "retry (an order listed as accepted is stored: resending it is "
                           "harmless, it is counted once)",
                           accepted=[v.order.order_id for v in accepted])
    ids = [v.order.order_id for v in accepted]
    if invalid:
        m.rejected.labels("invalid").inc(len(invalid))
        message = (invalid[0].reason if single else
                   f"{len(invalid)} of {len(lines)} orders are invalid; "
                   f"the other {len(ids)} were accepted")
        raise ApiError(400, "invalid_order" if single else "invalid_orders", message,
                       error_extra={"items": [i.as_json() for i in invalid]}, accepted=ids)
    return json_response({"accepted": ids, "count": len(ids)}, 202)


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    sink = request.app[SINK]
    if not sink.ready:
        raise ApiError(503, "not_ready", sink.last_problem)
    return json_response({"status": "ready", "topic": sink.topic,
                          "partitions": sink.routing.partitions if sink.routing else None})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus; behind ORDERSTATS_API_READ_TOKEN when set, as the workers' /metrics."""
    access = request.app[SETTINGS].access
    if access.grant(bearer(request.headers.get("Authorization"))) < access.required(
            "GET", request.path):
        raise ApiError(401, "unauthorized", "a valid read token is required "
                       "(Authorization: Bearer TOKEN)")
    m = request.app[METRICS]
    m.kafka_up.set(1 if request.app[SINK].ready else 0)
    return web.Response(body=generate_latest(m.registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_app(settings: Settings, keys: KeyRing, sink: OrderSink) -> web.Application:
    app = web.Application(middlewares=[errors_and_metrics],
                          client_max_size=settings.gateway_batch_max_bytes)
    app[SETTINGS], app[KEYS], app[SINK], app[METRICS] = settings, keys, sink, GatewayMetrics()
    app.router.add_post("/orders", post_order)
    app.router.add_post("/orders/batch", post_batch)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app
