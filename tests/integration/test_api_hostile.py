"""The web API under malformed, huge and encoded-traversal parameters: a JSON 4xx, never a
5xx or a traceback, and the worker stays up."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson
import pytest

from tests.support import Deployment, assert_matches_truth

pytestmark = pytest.mark.kafka

HOSTILE = [
    "/api/stores/%00",
    "/api/stores/..%2F..%2F..%2Fetc%2Fpasswd",
    "/api/stores/" + "x" * 5_000,
    "/api/stores/s-0001?limit=-1",
    "/api/stores/s-0001?limit=abc",
    "/api/stores/s-0001?limit=99999999999999999999999",
    "/api/stores/s-0001?limit=1e3",
    "/api/stores/s-0001/windows",
    "/api/stores/s-0001/windows?from=garbage&to=2026-11-23T00:00:00Z",
    "/api/stores/s-0001/windows?from=2026-13-45T99:00:00Z&to=2026-11-23T00:00:00Z",
    "/api/stores/s-0001/windows?from=2026-11-23T00:00:00&to=2026-11-24T00:00:00Z",
    "/api/stores/s-0001/windows?from=2026-11-24T00:00:00Z&to=2026-11-23T00:00:00Z",
    "/api/stores/s-0001/windows?from=" + "9" * 5000 + "&to=2026-11-23T00:00:00Z",
    "/api/stores?sort=..%2F",
    "/api/stores?sort=revenue&limit=0",
    "/api/stores?limit=%00",
    "/api/stores/never-seen",
]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_every_hostile_request_gets_a_json_4xx(deployment: Deployment, tmp_path):
    truth = deployment.generate(tmp_path / "t.json", "--count", "500", "--stores", "5",
                                "--rate", "0", "--span", "600")
    worker = deployment.worker()
    worker.wait_ready()
    assert_matches_truth(worker.url, truth)
    for path in HOSTILE:
        status, body = get(worker.url + path)
        assert 400 <= status < 500, (path[:80], status, body[:200])
        assert body[:1] == b"{", (path[:80], status, body[:200])
        error = orjson.loads(body)["error"]
        assert error["code"] and error["message"], path[:80]
        assert b"Traceback" not in body
    # A request line over 8 KiB never reaches the API: aiohttp's HTTP parser answers a
    # plain-text 400 itself (its max_line_size), which is still a client error.
    assert get(worker.url + "/api/stores/" + "x" * 10_000)[0] == 400
    assert get(worker.url + "/health")[0] == 200  # still up
