"""One HTTP request with any method and headers, redirects not followed, for the access tests
(urllib follows redirects and hides 401 bodies behind exceptions)."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict:
        return orjson.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def call(url: str, method: str = "GET", headers: dict[str, str] | None = None,
         body: bytes | None = None, limit: int | None = None, timeout: float = 10) -> Answer:
    """``limit``: read at most that many bytes (a stream that never ends)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""),
                     body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read(limit) if limit else resp.read()
        return Answer(resp.status, resp.headers, data)
    finally:
        conn.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
