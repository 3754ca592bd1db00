"""JSON answers for requests no route matches (aiohttp's own are plain text).

Faust 0.15.3's aiohttp driver (faust.web.drivers.aiohttp.Web) builds its aiohttp
``Application`` in ``__init__`` and keeps it as ``web_app``; a middleware appended before the
web server starts sees every request, and turns aiohttp's HTTPNotFound / HTTPMethodNotAllowed
(raised by the router when nothing matches) into the API's error shape.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import faust
import orjson
from aiohttp import web


def _json(status: int, code: str, message: str) -> web.Response:
    return web.Response(body=orjson.dumps({"error": {"code": code, "message": message}}),
                        status=status, content_type="application/json")


@web.middleware
async def json_unmatched(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as exc:
        resp = _json(405, "method_not_allowed", f"{request.method} is not allowed here")
        resp.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        return resp
    except web.HTTPNotFound:
        return _json(404, "not_found", "no such route")


def install_json_unmatched(app: faust.App) -> None:
    """Add the middleware to ``app``'s aiohttp Application (before the web server starts)."""
    web_app = getattr(app.web, "web_app", None)  # the faust-streaming 0.15.3 aiohttp driver's
    if web_app is not None and json_unmatched not in web_app.middlewares:
        web_app.middlewares.append(json_unmatched)
