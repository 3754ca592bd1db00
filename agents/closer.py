"""Closing windows and publishing their final figures (the wiring of tables/closing.py).

Per partition batch (and per idle tick, agents/orders.py, for partitions that receive
nothing): :meth:`WindowCloser.prepare` marks the windows to close in the batch's new values
(a close is a write of the same key), and :meth:`WindowCloser.publish`, called by the
batch's commit after the windows' changelog records are acknowledged and before the
progress record, sends their results to ``APP_ID-window-results`` and waits for the acks.
The progress then records the close time as confirmed. A crash between the two publishes the
same records again after the restart (:meth:`WindowCloser.scan`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Awaitable, Callable, Iterable, NamedTuple

import orjson

from agents.partition import PartitionState
from app import metrics
from tables import keys
from tables.closing import (OpenWindows, WindowResult, close_limit, encode_result, reclosed,
                            unconfirmed)
from tables.keys import WindowKey
from tables.store import PartitionStore
from tables.values import WindowValue
from tables.windows import Rollups, TumblingWindows

log = logging.getLogger(__name__)

# send(topic, key, value, partition, timestamp_s, headers) -> a future of the broker's ack
Send = Callable[..., Awaitable[Any]]


class Scanned(NamedTuple):
    """What a scan of a partition's windows found."""

    opened: OpenWindows
    unpublished: set[WindowKey]


def results_topic(app_id: str) -> str:
    """The compacted topic of closed windows: one per deployment, whatever the epoch."""
    return f"{app_id}-window-results"


class WindowCloser:
    """Decides which windows close and publishes them; one per worker."""

    def __init__(self, base: TumblingWindows, base_name: str, rollups: Rollups, grace_s: int,
                 topic: str, send: Send, epoch: int = 1,
                 label: Callable[[str, int], str | None] = lambda size, start_ms: None) -> None:
        self.base, self.base_name, self.rollups = base, base_name, rollups
        self.grace_ms = grace_s * 1000
        self.topic = topic
        self.send = send
        self.epoch = epoch
        self.label = label
        self.partitions = 0  # of the results topic (0: unknown, the producer picks by key)
        # False while this worker's epoch is not the serving one (a shadow rebuild): closes
        # are kept in the table, published once the epoch serves (a scan finds them).
        self.publishing: Callable[[], bool] = lambda: True

    def end_ms(self, key: WindowKey) -> int:
        if len(key) == 2:
            return (key[1] + self.base.size_s) * 1000
        return self.rollups.end_ms(key[2], key[1])  # type: ignore[misc]

    def size_name(self, key: WindowKey) -> str:
        return self.base_name if len(key) == 2 else key[2]  # type: ignore[misc]

    def scan(self, store: PartitionStore, partition: int, confirmed_ms: int,
             stop: threading.Event | None = None) -> Scanned | None:
        """Once per partition load (and when publishing starts): the open windows, and the
        closed ones closed after ``confirmed_ms`` (not confirmed published). Reads every
        window of the partition, so the wiring runs it in a thread beside the partition's
        batches (agents/window_scan.py). None if ``stop`` was set meanwhile."""
        started = time.perf_counter()
        opened = OpenWindows()
        unpublished: set[WindowKey] = set()
        windows = 0
        for raw_key, raw in store.raw_items(partition):
            if not keys.is_window_key(raw_key):
                continue
            windows += 1
            if not windows & 0x3FFF and stop is not None and stop.is_set():
                return None
            closed_at = WindowValue.closed_at_of(raw)
            if closed_at and closed_at <= confirmed_ms:
                continue  # closed and published: nearly all of them, left undecoded
            value = WindowValue.load(orjson.loads(raw))
            wkey: WindowKey = tuple(keys.decode(raw_key))  # type: ignore[assignment]
            if not value.revision:
                opened.add(wkey, self.end_ms(wkey))
            elif unconfirmed(value, confirmed_ms):
                unpublished.add(wkey)
        log.info("partition %s: %s windows scanned in %.2f s: %s open, %s closed windows to "
                 "publish again", partition, windows, time.perf_counter() - started,
                 len(opened), len(unpublished))
        return Scanned(opened, unpublished)

    @staticmethod
    def merge(state: PartitionState, found: Scanned, publishing: bool) -> None:
        """Add a scan's findings to what the partition's batches found meanwhile."""
        state.open_windows.merge(found.opened)
        state.unpublished |= found.unpublished
        state.windows_indexed = True
        state.scanned = publishing  # else scanned again when publishing starts

    def has_work(self, state: PartitionState, now_ms: int) -> bool:
        """Anything to close or publish without a new event (the idle tick)."""
        if not state.windows_indexed:
            return False  # the scan still runs: its open windows are not all known yet
        if state.unpublished and self.publishing():
            return True
        end = state.open_windows.next_end()
        return end is not None and end <= close_limit(
            state.watermark_ms, now_ms, state.last_event_wall_ms, self.grace_ms)

    def prepare(self, state: PartitionState, windows: dict[WindowKey, WindowValue],
                stored: dict[WindowKey, WindowValue], watermark_ms: int, now_ms: int,
                read: Callable[[list[WindowKey]], list[Any]], had_events: bool
                ) -> list[WindowKey]:
        """Close what is due in ``windows`` (the batch's new values, updated in place; values
        read with ``read`` are added). Returns the windows to publish after the write."""
        if had_events:
            state.last_event_wall_ms = now_ms
        now = max(now_ms, state.results_confirmed_ms + 1)  # close times only grow
        publish: list[WindowKey] = []
        opened = state.open_windows
        for key, value in windows.items():
            before = stored.get(key)
            if not value.revision:
                if before is None or not before.orders:  # new: the others are indexed already
                    opened.add(key, self.end_ms(key))
                continue
            again = reclosed(before or WindowValue(), value, now)
            if again is not None:
                windows[key] = again
                publish.append(key)
                metrics.AFTER_CLOSE.labels(self.size_name(key)).inc(
                    again.orders - (before or WindowValue()).orders)
        # Nothing closes before the scan is merged: the windows it has yet to report would
        # close later than the ones it did, and close times must only grow.
        due = opened.due(close_limit(watermark_ms, now_ms, state.last_event_wall_ms,
                                     self.grace_ms)) if state.windows_indexed else []
        if self.publishing() and state.unpublished:
            due.extend(state.unpublished)  # re-sent as they are (closed values stay closed)
        missing = [key for key in due if key not in windows]
        windows.update((key, WindowValue.load(v)) for key, v in zip(missing, read(missing))
                       if v is not None)
        for key in due:
            value = windows.get(key)
            if value is None:
                continue  # deleted by the retention since
            if not value.revision:
                windows[key] = value.closed(now)
            publish.append(key)
        return publish

    async def publish(self, partition: int, state: PartitionState,
                      windows: dict[WindowKey, WindowValue], keys: Iterable[WindowKey]) -> None:
        """Send the results of ``keys`` (closed values in ``windows``, already durable in the
        changelog) and wait for the broker's acks; then their close is confirmed."""
        if not self.publishing():
            state.unpublished.clear()  # found again by the scan when publishing starts
            return
        order = sorted(set(keys), key=lambda k: (self.end_ms(k), k[1], self.size_name(k), k[0]))
        target = partition % self.partitions if self.partitions else None
        acks = []
        latest = state.results_confirmed_ms
        for key in order:
            value = windows.get(key)
            if value is None or not value.revision:
                continue
            size, start_ms = self.size_name(key), key[1] * 1000
            record = WindowResult.of(key[0], size, start_ms, self.end_ms(key), value,
                                     self.epoch, self.label(size, start_ms))
            rkey, rvalue = encode_result(record)
            acks.append(await self.send(self.topic, rkey, rvalue, target, None, None))
            metrics.WINDOW_RESULTS.labels(size).inc()
            latest = max(latest, value.closed_at_ms)
        await asyncio.gather(*acks)
        state.unpublished.clear()
        state.results_confirmed_ms = latest
