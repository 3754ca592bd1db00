"""A retiring worker's answers: every stats request forwarded to a worker of the current epoch.

Once a newer epoch is current (app/epoch_watch.py), a worker of the old one must not answer
from its own state any more: a client would see figures of two epochs. So the stats routes
(``/api/stores...``, ``/api/live``) are forwarded, whole, to a registered worker of the
current epoch, which answers them within its own group; the answer names its epoch
(``as_of.epoch``). Requests between workers of the old group (``X-Orderstats-Routed``,
``/api/_local/...``) still answer locally, so a request one old worker is fanning out or
routing stays in the old epoch. If no worker of the current epoch can answer, the old
worker's own answer (its epoch named) is better than an error.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Protocol

import aiohttp
from aiohttp import web

from app.web.cluster import ROUTED_HEADER, Cluster

log = logging.getLogger(__name__)

FORWARD_TIMEOUT_S = 5.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Retirement(Protocol):
    retiring: bool

    def forward_targets(self) -> list[str]: ...


def forwarded(path: str) -> bool:
    """The public stats questions (not the page, health, metrics, cluster or internal routes)."""
    return path == "/api/stores" or path.startswith("/api/stores/") or path == "/api/live"


class Forwarder:
    """Forward a retiring worker's stats requests to the current epoch's workers."""

    def __init__(self, retirement: Retirement, cluster: Cluster) -> None:
        self.retirement = retirement
        self.cluster = cluster
        self.good: str | None = None  # the target that answered last

    def wants(self, request: web.Request) -> bool:
        return (self.retirement.retiring and request.method in ("GET", "HEAD")
                and not request.headers.get(ROUTED_HEADER) and forwarded(request.path))

    def order(self, targets: list[str]) -> list[str]:
        """The last target that answered first, then the others."""
        if self.good in targets:
            return [self.good] + [t for t in targets if t != self.good]
        return targets

    async def forward(self, request: web.Request) -> web.Response | None:
        """The first answer of a current-epoch worker that is not a 5xx, else None."""
        headers = self.cluster.settings.access.peer_headers()
        timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
        for url in self.order(self.retirement.forward_targets()):
            try:
                async with self.cluster.session.get(url + request.path_qs, headers=headers,
                                                    timeout=timeout) as resp:
                    body = await resp.read()
                    if resp.status >= 500:
                        continue
                    self.good = url
                    return web.Response(body=body, status=resp.status,
                                        content_type=resp.content_type or "application/json")
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                continue
        return None

    def middleware(self) -> Any:
        @web.middleware
        async def forward_when_retiring(request: web.Request, handler: Handler
                                        ) -> web.StreamResponse:
            if self.wants(request):
                answer = await self.forward(request)
                if answer is not None:
                    return answer
                log.info("no worker of the current epoch answered %s; answering from this "
                         "worker's epoch", request.path_qs)
            return await handler(request)

        return forward_when_retiring
