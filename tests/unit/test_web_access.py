"""The worker's access middleware, in process (aiohttp test server, no Kafka): 401s, tokens,
the page's sign-in cookie, CORS and the security headers on every answer."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.access import Access
from app.cors import Cors
from app.faust_ext.web_access import web_access
from app.faust_ext.web_errors import json_unmatched
from app.web.assets import CSP

READ = "read-token-0123456789"
ADMIN = "admin-token-0123456789"
ORIGIN = "https://dash.example"


async def page(request: web.Request) -> web.Response:
    resp = web.Response(text="<html>page</html>", content_type="text/html")
    resp.headers["Content-Security-Policy"] = CSP
    return resp


async def stores(request: web.Request) -> web.Response:
    return web.json_response({"stores": []})


async def stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(b"retry: 2000\n\n")
    return resp


def run(access: Access, cors: Cors,
        body: Callable[[TestClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        app = web.Application(middlewares=[web_access(access, cors, CSP), json_unmatched])
        app.router.add_get("/", page)
        app.router.add_get("/api/stores", stores)
        app.router.add_get("/api/stream", stream)
        app.router.add_get("/health", stores)
        async with TestClient(TestServer(app, host="127.0.0.1"),
                              cookie_jar=aiohttp.DummyCookieJar()) as client:
            return await body(client)
    return asyncio.run(main())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_decide_and_every_answer_is_hardened():
    async def body(c: TestClient) -> None:
        for headers in ({}, bearer("wrong-token-0123456789"), {"Authorization": f"Basic {READ}"}):
            r = await c.get("/api/stores", headers=headers)
            assert r.status == 401, headers
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await r.json())["error"]["code"] == "unauthorized"
            assert READ not in await r.text() and ADMIN not in await r.text()
        for token in (READ, ADMIN):
            r = await c.get("/api/stores", headers=bearer(token))
            assert r.status == 200 and await r.json() == {"stores": []}
        r = await c.get("/health")  # probes stay open
        assert r.status == 200
        r = await c.get("/nowhere")  # unknown routes: no hint without a token
        assert r.status == 401
        r = await c.get("/nowhere", headers=bearer(READ))
        assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
        # a change: the read token is not enough (403), the admin token passes to the router
        r = await c.post("/api/stores", headers=bearer(READ))
        assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
        r = await c.post("/api/stores", headers=bearer(ADMIN))
        assert r.status == 405
        r = await c.post("/api/stores")
        assert r.status == 401
        for path in ("/api/stores", "/nowhere", "/health"):
            r = await c.get(path, headers=bearer(READ))
            assert r.headers["X-Content-Type-Options"] == "nosniff", path
            assert r.headers["Referrer-Policy"] == "no-referrer", path
            assert "default-src 'self'" in r.headers["Content-Security-Policy"], path
            assert "Access-Control-Allow-Origin" not in r.headers, path

    run(Access(READ, ADMIN), Cors(), body)


def cookie_of(resp: aiohttp.ClientResponse) -> str:
    set_cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie, set_cookie
    return set_cookie.split(";", 1)[0]


def test_the_page_signs_in_with_a_cookie():
    async def body(c: TestClient) -> None:
        r = await c.get("/?store=s-1", headers={"Accept": "text/html"}, allow_redirects=False)
        assert r.status == 401 and r.content_type == "text/html"
        text = await r.text()
        assert 'action="/login"' in text and 'value="/?store=s-1"' in text
        assert "form-action 'self'" in r.headers["Content-Security-Policy"]
        # the form: a wrong token, then the right one; the cookie only ever reads
        r = await c.post("/login", data={"token": "wrong-token-0123456789", "next": "/"},
                         allow_redirects=False)
        assert r.status == 401 and "Set-Cookie" not in r.headers
        r = await c.post("/login", data={"token": READ, "next": "//evil.example/"},
                         allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/"
        cookie = {"Cookie": cookie_of(r)}
        r = await c.get("/", headers=cookie)
        assert r.status == 200 and await r.text() == "<html>page</html>"
        assert "form-action 'none'" in r.headers["Content-Security-Policy"]  # the page's own
        r = await c.get("/api/stores", headers=cookie)
        assert r.status == 200
        r = await c.get("/api/stream", headers=cookie)  # EventSource sends no header: cookie
        assert r.status == 200 and await r.content.read(13) == b"retry: 2000\n\n"
        r = await c.get("/api/stores", headers={"Cookie": "orderstats_token=wrong-0123456789"})
        assert r.status == 401
        # a link with the token: a cookie and the same page without the token in its URL
        r = await c.get(f"/?token={READ}&store=s-2", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/?store=s-2"
        assert cookie_of(r) == f"orderstats_token={READ}"
        r = await c.get("/?token=wrong-token-0123456789", allow_redirects=False)
        assert r.status == 401 and "Set-Cookie" not in r.headers
        # an admin token in the cookie still only reads: a cookie rides along with anything
        r = await c.post("/login", data={"token": ADMIN}, allow_redirects=False)
        r = await c.post("/api/stores", headers={"Cookie": cookie_of(r)})
        assert r.status == 403

    run(Access(READ, ADMIN), Cors(), body)


def test_cors_only_for_listed_origins():
    async def body(c: TestClient) -> None:
        pre = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
               "Access-Control-Request-Headers": "authorization"}
        r = await c.options("/api/stores", headers=pre)
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert r.headers["Access-Control-Allow-Headers"] == "Authorization"
        r = await c.get("/api/stores", headers={"Origin": ORIGIN, **bearer(READ)})
        assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "Access-Control-Allow-Credentials" not in r.headers
        other = "https://evil.example"
        r = await c.options("/api/stores", headers={**pre, "Origin": other})
        assert r.status == 401 and "Access-Control-Allow-Origin" not in r.headers
        r = await c.get("/api/stores", headers={"Origin": other, **bearer(READ)})
        assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers
        assert r.headers["Vary"] == "Origin"

    run(Access(READ, ADMIN), Cors(frozenset({ORIGIN})), body)


def test_without_tokens_nothing_changes():
    async def body(c: TestClient) -> None:
        r = await c.get("/api/stores", headers={"Origin": ORIGIN})
        assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers
        assert "Vary" not in r.headers
        r = await c.get("/?token=whatever-0123456789", allow_redirects=False)
        assert r.status == 200  # no tokens: the page, as before
        r = await c.options("/api/stores", headers={"Origin": ORIGIN,
                                                    "Access-Control-Request-Method": "GET"})
        assert r.status == 405 and "Access-Control-Allow-Origin" not in r.headers
        r = await c.get("/login")
        assert r.status == 404

    run(Access(), Cors(), body)
