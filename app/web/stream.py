"""One computation per tick for every viewer: the broadcaster behind ``GET /api/stream``.

Viewers subscribe to *topics* (the all-stores top-N, one store's current window). While at
least one viewer is subscribed, one task wakes every ``interval`` seconds, computes each
topic that someone watches exactly once, and, when the encoded message differs from the
last one sent for that topic, hands the same bytes to every subscriber of it. A slow viewer
never queues up: it keeps only the newest message of each topic. Pure asyncio, no Faust.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable, Hashable, Iterable

import orjson

log = logging.getLogger(__name__)

Topic = Hashable
#: computes one topic's message: (SSE event name, JSON-able body)
Compute = Callable[[Topic], Awaitable[tuple[str, object]]]


def sse_frame(event: str, body: object) -> bytes:
    """One Server-Sent Events message (orjson never emits a raw line break)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"


class Subscription:
    """One viewer: the newest unsent message of each of its topics."""

    def __init__(self, topics: Iterable[Topic]) -> None:
        self.topics = tuple(dict.fromkeys(topics))
        self._pending: dict[Topic, bytes] = {}
        self._ready = asyncio.Event()
        self.closed = False

    def offer(self, topic: Topic, frame: bytes) -> None:
        self._pending[topic] = frame  # replaces an older unsent one: no backlog
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def next(self, timeout: float | None = None) -> list[bytes]:
        """The messages waiting (in topic order), [] on timeout or once closed."""
        if not self._pending and not self.closed:
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except asyncio.TimeoutError:
                return []
        self._ready.clear()
        if self.closed:
            return []
        frames = [self._pending.pop(t) for t in self.topics if t in self._pending]
        return frames


class Broadcaster:
    """Computes each watched topic once per tick and fans the same bytes out to viewers."""

    def __init__(self, compute: Compute, interval: float = 1.0) -> None:
        self.compute = compute
        self.interval = interval
        self._subs: set[Subscription] = set()
        self._last: dict[Topic, bytes] = {}
        self._task: asyncio.Task | None = None
        self.closed = False
        self.ticks = 0  # for tests and curiosity: how many rounds ran
        self.computations = 0

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def subscribe(self, topics: Iterable[Topic]) -> Subscription:
        sub = Subscription(topics)
        if self.closed:
            sub.close()
            return sub
        self._subs.add(sub)
        for topic in sub.topics:  # a new viewer starts from the last message, if any
            if topic in self._last:
                sub.offer(topic, self._last[topic])
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        sub.close()

    async def close(self) -> None:
        """Stop: every viewer's stream ends (called when the worker shuts down)."""
        self.closed = True
        for sub in list(self._subs):
            self.unsubscribe(sub)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def tick(self) -> None:
        """One round: compute each watched topic once, send what changed."""
        self.ticks += 1
        watched = list(dict.fromkeys(t for sub in self._subs for t in sub.topics))
        results = await asyncio.gather(*(self._compute(t) for t in watched))
        for topic, frame in zip(watched, results):
            if frame is None or self._last.get(topic) == frame:
                continue
            self._last[topic] = frame
            for sub in self._subs:
                if topic in sub.topics:
                    sub.offer(topic, frame)
        for topic in set(self._last) - set(watched):  # nobody watches: forget it
            del self._last[topic]

    async def _compute(self, topic: Topic) -> bytes | None:
        self.computations += 1
        try:
            event, body = await self.compute(topic)
        except Exception:
            log.exception("stream: computing %r failed", topic)
            return None
        return sse_frame(event, body)

    async def _run(self) -> None:
        next_at = time.monotonic()
        while self._subs and not self.closed:
            await self.tick()
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay < 0:  # a slow round: skip ahead instead of bursting
                next_at, delay = time.monotonic(), 0
            await asyncio.sleep(delay)
