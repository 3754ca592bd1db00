"""Producing orders to Kafka, fire-and-forget with durable acks, at a steady rate."""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Iterable

from app.kafka.clients import Connection, producer

Progress = Callable[[int, float], None]


async def produce(conn: Connection, topic: str,
                  events: Iterable[tuple[bytes | None, bytes]],
                  rate: float = 0.0, progress: Progress | None = None,
                  should_stop: Callable[[], bool] = lambda: False) -> int:
    """Send ``events`` to ``topic``; ``rate`` events/s (0 = as fast as possible).

    Returns how many were acknowledged by the broker (acks=all), so a caller can trust that
    the ground truth matches what is in the topic.
    """
    sent = 0
    started = time.monotonic()
    last_report = started
    pending: list[asyncio.Future] = []
    async with producer(conn, linger_ms=5, max_batch_size=256 * 1024,
                        enable_idempotence=True) as client:
        for key, value in events:
            if should_stop():
                break
            pending.append(await client.send(topic, value=value, key=key))
            sent += 1
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0.005:
                    await asyncio.sleep(ahead)
            now = time.monotonic()
            if progress is not None and now - last_report >= 2.0:
                progress(sent, now - started)
                last_report = now
        await asyncio.gather(*pending)
        await client.flush()
    return sent
