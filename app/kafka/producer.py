"""Producing orders to Kafka, fire-and-forget with durable acks, at a steady rate."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Iterable

from app.kafka.clients import Connection, producer

Progress = Callable[[int, float], None]


async def produce(conn: Connection, topic: str,
                  events: Iterable[tuple[Any, ...]],
                  rate: float = 0.0, progress: Progress | None = None,
                  should_stop: Callable[[], bool] = lambda: False,
                  on_ack: Callable[[Any], None] | None = None) -> int:
    """Send ``events`` to ``topic``; ``rate`` events/s (0 = as fast as possible).

    Each event is ``(key, value)``, ``(key, value, tag)`` or ``(key, value, tag, headers)``
    (headers: a list of (name, bytes) or None); ``on_ack(tag)`` is called for
    every event the broker acknowledged (acks=all), and only for those, also when the
    sending stops early (``should_stop``, a cancellation such as Ctrl-C, or an error): the
    producer is flushed first, then whatever was acknowledged is reported. So a caller's
    ground truth built in ``on_ack`` matches what is in the topic. Returns how many events
    were acknowledged.
    """
    sent = 0  # handed to the producer
    acked = 0
    started = time.monotonic()
    last_report = started
    pending: list[tuple[asyncio.Future, Any]] = []

    def settle() -> None:
        nonlocal acked
        for fut, tag in pending:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                acked += 1
                if on_ack is not None:
                    on_ack(tag)
        pending.clear()

    try:
        async with producer(conn, linger_ms=5, max_batch_size=256 * 1024,
                            enable_idempotence=True) as client:
            source = iter(events)
            while not should_stop():  # asked before the next event is made, not after
                event = next(source, None)
                if event is None:
                    break
                pending.append((await client.send(
                    topic, value=event[1], key=event[0],
                    headers=event[3] if len(event) > 3 else None),
                    event[2] if len(event) > 2 else None))
                sent += 1
                if len(pending) >= 10_000:
                    await asyncio.gather(*(f for f, _ in pending))
                    settle()
                if rate > 0:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0.005:
                        await asyncio.sleep(ahead)
                now = time.monotonic()
                if progress is not None and now - last_report >= 2.0:
                    progress(sent, now - started)
                    last_report = now
            await asyncio.gather(*(f for f, _ in pending))
            await client.flush()
    finally:  # after the producer's stop, which flushes: every future is settled
        settle()
    return acked
