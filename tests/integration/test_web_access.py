"""Two real workers with a read and an admin token: 401 without, 200 with, the page's cookie,
CORS for one listed origin, and the workers' own calls to each other (routed single-store
answers, the all-stores and cluster fan-out) carrying the token, so a secured cluster still
answers every question exactly."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

import pytest

from app.cli.verify import diff_store
from tests.http_call import bearer, call
from tests.support import Deployment
from tests.worker_process import wait_for

pytestmark = pytest.mark.kafka

READ = "itest-read-0123456789abcdef"
ADMIN = "itest-admin-0123456789abcdef"
ORIGIN = "https://dash.example"
TOKENS = {"ORDERSTATS_API_READ_TOKEN": READ, "ORDERSTATS_API_ADMIN_TOKEN": ADMIN}
GUARDED = ["/", "/static/page.js", "/api/stores", "/api/stores/s-0001", "/api/cluster",
           "/api/live", "/api/stream", "/api/openapi.json", "/metrics", "/api/_local/stores",
           "/api/_local/status", "/router/", "/table/", "/no-such-route"]


def every_store_exact(url: str, truth: dict) -> list[str]:
    problems = []
    for store_id, want in truth["stores"].items():
        a = call(f"{url}/api/stores/{quote(store_id, safe='')}?limit=10000", headers=bearer(READ))
        if a.status != 200:
            problems.append(f"{store_id}: {a.status} {a.text[:200]}")
            continue
        problems += diff_store(store_id, want, a.json())
    return problems


def test_a_secured_cluster(deployment: Deployment, tmp_path: Path):
    truth = deployment.generate(tmp_path / "t.json", "--count", "3000", "--stores", "40",
                                "--rate", "0", "--span", "600")
    w1 = deployment.worker(1, **TOKENS, ORDERSTATS_CORS_ORIGINS=ORIGIN)
    w2 = deployment.worker(2, **TOKENS)
    w1.wait_ready(), w2.wait_ready()  # /ready stays open: probes need no token

    # Both workers own partitions, and each answers every store exactly: half of them only
    # through a routed call to the other worker, which needs the token.
    def split_and_exact() -> bool:
        c = call(w1.url + "/api/cluster", headers=bearer(READ)).json()
        owners = [w for w in c["workers"] if w.get("active")]
        return (len(owners) == 2 and not c["unowned_partitions"]
                and not any("error" in w for w in c["workers"])
                and not every_store_exact(w1.url, truth) and not every_store_exact(w2.url, truth))
    started = time.monotonic()
    wait_for(split_and_exact, 180, interval=1, what="two workers, every store exact")
    print(f"\nsecured cluster exact through both workers after {time.monotonic() - started:.1f}s")
    merged = call(w2.url + "/api/stores?limit=100000", headers=bearer(READ)).json()
    assert merged["complete"] and merged["count"] == len(truth["stores"]), merged.get(
        "unreachable_workers")

    for w in (w1, w2):
        for probe in ("/health", "/ready"):
            assert call(w.url + probe).status == 200, probe
        for path in GUARDED:
            for headers in ({}, bearer("wrong-token-0123456789abc"),
                            {"Cookie": "orderstats_token=wrong-token-0123456789"},
                            {"X-Orderstats-Routed": "1"}):  # the internal header is no key
                a = call(w.url + path, headers=headers)
                assert a.status == 401, (path, headers, a.status, a.text[:200])
                assert a.headers["WWW-Authenticate"].startswith("Bearer"), path
                assert a.json()["error"]["code"] == "unauthorized", path
            ok = call(w.url + path, headers=bearer(READ), limit=4096)
            assert ok.status == (404 if path == "/no-such-route" else 200), (path, ok.text[:300])
            assert call(w.url + path, headers=bearer(ADMIN), limit=4096).status == ok.status
        metrics = call(w.url + "/metrics", headers=bearer(READ)).text
        assert "orderstats_events_total" in metrics
        # a change needs the admin token (the workers have no such route: 405 after it)
        assert call(w.url + "/api/stores", "POST", bearer(READ)).status == 403
        assert call(w.url + "/api/stores", "POST", bearer(ADMIN)).status == 405

    # The page in a browser: a link with the token, or the sign-in form, gives a cookie.
    a = call(w1.url + "/", headers={"Accept": "text/html"})
    assert a.status == 401 and 'action="/login"' in a.text
    a = call(f"{w1.url}/?token={READ}&store=s-0001")
    assert a.status == 303 and a.headers["Location"] == "/?store=s-0001"
    set_cookie = a.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    cookie = {"Cookie": set_cookie.split(";", 1)[0]}
    page = call(w1.url + "/?store=s-0001", headers=cookie)
    assert page.status == 200 and "data-worker-url" in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for path in ("/api/live", "/api/cluster", "/static/page.js"):
        assert call(w1.url + path, headers=cookie).status == 200, path
    stream = call(w1.url + "/api/stream", headers=cookie, limit=13)
    assert stream.status == 200 and stream.body == b"retry: 2000\n\n"
    # workers on one host share the cookie (cookies ignore the port): the page's failover works
    assert call(w2.url + "/", headers=cookie).status == 200
    form = call(w2.url + "/login", "POST", {"Content-Type": "application/x-www-form-urlencoded"},
                f"token={READ}&next=/%3Fstore%3Ds-0002".encode())
    assert form.status == 303 and form.headers["Location"] == "/?store=s-0002"
    assert call(w2.url + "/login", "POST", {"Content-Type": "application/x-www-form-urlencoded"},
                b"token=wrong-token-0123456789&next=/").status == 401

    # Security headers on the page and its files; CORS on w1 for its one origin only.
    for path in ("/", "/static/page.js", "/static/vendor/uPlot.iife.min.js", "/api/stores"):
        a = call(w1.url + path, headers=bearer(READ))
        assert a.headers["X-Content-Type-Options"] == "nosniff", path
        assert a.headers["Referrer-Policy"] == "no-referrer", path
        assert "script-src" not in a.headers["Content-Security-Policy"], path  # 'self' only
        assert "default-src 'self'" in a.headers["Content-Security-Policy"], path
    pre = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
           "Access-Control-Request-Headers": "authorization"}
    a = call(w1.url + "/api/stores", "OPTIONS", pre)
    assert a.status == 204 and a.headers["Access-Control-Allow-Origin"] == ORIGIN
    a = call(w1.url + "/api/stores", headers={"Origin": ORIGIN, **bearer(READ)})
    assert a.headers["Access-Control-Allow-Origin"] == ORIGIN
    for w, origin in ((w1, "https://evil.example"), (w2, ORIGIN)):
        a = call(w.url + "/api/stores", headers={"Origin": origin, **bearer(READ)})
        assert a.status == 200 and "Access-Control-Allow-Origin" not in a.headers
        assert call(w.url + "/api/stores", "OPTIONS", {**pre, "Origin": origin}).status == 401

    for w in (w1, w2):
        assert w.stop() == 0
        log = w.log_path.read_text(errors="replace")
        assert READ not in log and ADMIN not in log
