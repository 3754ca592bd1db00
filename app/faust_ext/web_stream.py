"""A streamed HTTP answer (Server-Sent Events) from a Faust view.

Faust's views return whole responses (``View.bytes``, ``View.json``). Its aiohttp driver
(``faust.web.drivers.aiohttp``, faust-streaming 0.15.3) hands a view the aiohttp
``web.Request`` itself as the view's ``request`` and lets aiohttp send whatever the view
returns, so a view may instead prepare an ``aiohttp.web.StreamResponse`` on that request,
write to it for as long as it likes, and return it. No private name is read; what this
relies on is that driver detail, checked here so that another driver fails loudly.
"""

from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web

# Writing to a viewer that went away raises one of these (aiohttp's ClientConnectionResetError
# is a ConnectionResetError).
DISCONNECTED = (ConnectionError, RuntimeError)


async def open_event_stream(request: Any,
                            headers: Mapping[str, str] | None = None) -> web.StreamResponse:
    """Start a ``text/event-stream`` answer on ``request`` (a view's request) and return it."""
    if not isinstance(request, web.BaseRequest):  # DRIVER DETAIL: faust's aiohttp driver
        raise TypeError("event streams need faust's aiohttp web driver "
                        f"(got a {type(request).__name__} request)")
    resp = web.StreamResponse(status=200, headers={
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache, no-transform",
        "X-Accel-Buffering": "no",  # ask reverse proxies not to buffer the stream
        **(headers or {})})
    await resp.prepare(request)
    return resp
