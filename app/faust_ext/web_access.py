"""The worker's HTTP door: bearer tokens, the page's sign-in cookie, CORS, security headers.

One aiohttp middleware put first on Faust's aiohttp Application (``app.web.web_app``, as
web_errors.py does), so it sees every request, Faust's own routes (/router, /table) too,
before any view runs. The decisions are app/access.py's and app/cors.py's; this file only
speaks HTTP:

* 401 ``{"error": {"code": "unauthorized", ...}}`` with ``WWW-Authenticate: Bearer`` without a
  good token (403 ``forbidden`` when a read token asks for a change); a browser asking for the
  page gets a small sign-in form instead (still 401).
* A browser cannot add a header on navigation nor on EventSource, so ``/?token=T`` or the
  form (``POST /login``) trade a good token for an HttpOnly, SameSite=Strict cookie and
  redirect to the page without the token in its URL. The cookie only ever grants reading: a
  cookie rides along with whatever the browser sends, so it must never authorise a change.
* Every answer not already sent carries ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: no-referrer`` and a Content-Security-Policy (the page's own is stricter
  about forms than the sign-in form's).
"""

from __future__ import annotations

import html
import logging
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode

import faust
import orjson
from aiohttp import web

from app.access import COOKIE, Access, Level, bearer, safe_next, session_cookie
from app.cors import Cors

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LOGIN_CSP = ("default-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
             "form-action 'self'")
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
CHALLENGE = 'Bearer realm="orderstats"'

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>orderstats: sign in</title></head>
<body><h1>orderstats</h1><p>{message}</p>
<form method="post" action="/login">
<label>Read token <input type="password" name="token" autocomplete="current-password"
 autofocus required></label>
<input type="hidden" name="next" value="{next}">
<button type="submit">Open the page</button></form></body></html>
"""


def _error(status: int, code: str, message: str) -> web.Response:
    resp = web.Response(body=orjson.dumps({"error": {"code": code, "message": message}}),
                        status=status, content_type="application/json")
    if status == 401:
        resp.headers["WWW-Authenticate"] = CHALLENGE
    return resp


def _login_form(status: int, message: str, next_path: str) -> web.Response:
    resp = web.Response(text=LOGIN_PAGE.format(message=html.escape(message),
                                               next=html.escape(safe_next(next_path))),
                        status=status, content_type="text/html")
    resp.headers["Content-Security-Policy"] = LOGIN_CSP
    if status == 401:
        resp.headers["WWW-Authenticate"] = CHALLENGE
    return resp


def _signed_in(request: web.Request, token: str, next_path: str) -> web.Response:
    resp = web.Response(status=303, headers={"Location": safe_next(next_path)})
    resp.headers["Set-Cookie"] = session_cookie(token, secure=request.secure)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _is_page(request: web.Request) -> bool:
    return request.path == "/" and request.method in ("GET", "HEAD")


def _without_token(request: web.Request) -> str:
    rest = [(k, v) for k, v in request.query.items() if k != "token"]
    return request.path + ("?" + urlencode(rest) if rest else "")


async def _login(request: web.Request, access: Access) -> web.StreamResponse:
    """GET: the form. POST (form fields ``token``, ``next``): the cookie and a redirect."""
    if request.method != "POST":
        return _login_form(200, "This worker needs its read token.", request.query.get("next", "/"))
    form = await request.post()
    token, next_path = str(form.get("token") or ""), str(form.get("next") or "/")
    if access.grant(token) < Level.READ:
        log.warning("web: sign-in with a wrong token from %s", request.remote)
        return _login_form(401, "That token is not right.", next_path)
    return _signed_in(request, token, next_path)


async def _decide(request: web.Request, access: Access, handler: Handler
                  ) -> web.StreamResponse:
    if request.path == "/login":
        return await _login(request, access)
    needed = access.required(request.method, request.path)
    if needed == Level.NONE:
        return await handler(request)
    if "token" in request.query and _is_page(request):  # a link that signs a browser in
        if access.grant(request.query["token"]) >= Level.READ:
            return _signed_in(request, request.query["token"], _without_token(request))
        return _login_form(401, "The token in the link is not right.", _without_token(request))
    header = bearer(request.headers.get("Authorization"))
    granted = access.grant(header) if header else min(
        access.grant(request.cookies.get(COOKIE)), Level.READ)
    if granted >= needed:
        return await handler(request)
    if granted >= Level.READ:
        return _error(403, "forbidden", "this needs the admin token")
    if _is_page(request) and "text/html" in request.headers.get("Accept", ""):
        return _login_form(401, "This worker needs its read token.", request.path_qs)
    return _error(401, "unauthorized", "a valid token is required "
                  "(Authorization: Bearer TOKEN)")


def web_access(access: Access, cors: Cors, csp: str) -> Any:
    """The middleware for these settings; ``csp`` is the policy of answers that set none."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        preflight = (request.method == "OPTIONS"
                     and "Access-Control-Request-Method" in request.headers)
        allowed = cors.preflight(origin) if preflight else None
        if allowed is not None:
            resp: web.StreamResponse = web.Response(status=204, headers=allowed)
        elif access.enabled:
            resp = await _decide(request, access, handler)
        else:
            resp = await handler(request)
        if not resp.prepared:  # a stream (SSE) has sent its headers already
            for name, value in {**SECURITY_HEADERS, "Content-Security-Policy": csp,
                                **cors.headers(origin)}.items():
                resp.headers.setdefault(name, value)
        return resp

    return middleware


def install_web_access(app: faust.App, access: Access, cors: Cors, csp: str) -> None:
    """Put the middleware first on ``app``'s aiohttp Application (before the server starts)."""
    web_app = getattr(app.web, "web_app", None)  # the faust-streaming 0.15.3 aiohttp driver's
    if web_app is not None:
        web_app.middlewares.insert(0, web_access(access, cors, csp))
