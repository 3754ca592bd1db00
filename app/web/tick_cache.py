"""Answers shared by every request and stream of one worker for one tick (default 1 s).

The all-stores question reads every store of every partition; with many viewers polling
``GET /api/stores`` (and the live stream computing its top-N) that scan ran once per request.
A ``TickCache`` keeps each answer for ``ttl`` seconds and lets concurrent askers of a missing
answer wait for the one computation under way (single flight). An answer that took longer
than ``ttl`` to compute is kept as long as it took, counted from when it was ready, so the
worker spends at most half its time answering the question however many stores it holds.
Pure asyncio, no Faust.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Hashable

TICK_S = 1.0


class TickCache:
    def __init__(self, ttl: float = TICK_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._done: dict[Hashable, tuple[float, float, Any]] = {}  # ready at, keep for
        self._running: dict[Hashable, asyncio.Future] = {}

    def _fresh(self, key: Hashable) -> tuple[bool, Any]:
        now = self.clock()
        hit = self._done.get(key)
        if hit is not None and now - hit[0] < hit[1]:
            return True, hit[2]
        # forget every stale answer: the cache holds at most one tick's worth of keys
        for k in [k for k, (at, keep, _) in self._done.items() if now - at >= keep]:
            del self._done[k]
        return False, None

    def _store(self, key: Hashable, started: float, value: Any) -> None:
        ready = self.clock()
        self._done[key] = (ready, max(self.ttl - (ready - started), ready - started), value)

    def get_sync(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        fresh, value = self._fresh(key)
        if fresh:
            return value
        started = self.clock()
        value = compute()
        self._store(key, started, value)
        return value

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any:
        fresh, value = self._fresh(key)
        if fresh:
            return value
        task = self._running.get(key)
        if task is None:
            # its own task: an asker that goes away does not cancel the others' answer
            task = asyncio.ensure_future(self._compute(key, compute))
            self._running[key] = task
        return await asyncio.shield(task)

    async def _compute(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any:
        started = self.clock()
        try:
            value = await compute()
            self._store(key, started, value)
            return value
        finally:
            del self._running[key]
