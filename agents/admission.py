"""In-order offset admission: a partition's events are applied only without a hole.

When a delivered offset jumps ahead of the next one expected, either the skipped offsets
hold no records (transaction markers, compaction, retention, or ``orderstats replay`` moved
the group), or records were fetched and then dropped on the way (Faust's rebalance handling
can do that). The broker is asked which (a :class:`Probe`); a real hole is re-read from the
expected offset, and nothing past it is admitted until the re-read arrives.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping, Protocol

from faust.types import TP, EventT

from app import metrics

log = logging.getLogger(__name__)

REREAD_PATIENCE_S = 10.0  # a re-read that has not arrived by then is verified and sought again

Seek = Callable[[Mapping[TP, int]], Awaitable[None]]


class Probe(Protocol):
    """What the broker can tell about a partition (app.kafka.log_probe.LogProbe)."""

    async def committed(self, partition: int) -> int | None: ...

    async def first_offset(self, partition: int, from_offset: int) -> int | None: ...

    async def log_start(self, partition: int) -> int | None: ...


@dataclass
class Cursor:
    """Where one partition's admission stands."""

    next_offset: int  # the offset expected next in delivery order
    verified_next: int | None = None  # first record after a verified gap, while re-reading
    rereading_since: float | None = None  # re-sought after a lost delivery (monotonic s)

    def advance_to(self, next_offset: int) -> None:
        """The partition's offsets are complete below ``next_offset``; any re-read is over."""
        self.next_offset = next_offset
        self.verified_next = self.rereading_since = None


class Admission:
    """Admits each partition's events of one topic in offset order."""

    def __init__(self, topic: str, probe: Probe, seek: Seek) -> None:
        self.topic = topic
        self.probe = probe
        self.seek = seek

    async def admit(self, partition: int, cursor: Cursor, events: list[EventT]) -> list[EventT]:
        """The events that continue the partition's offsets without a hole, in order.

        Re-deliveries (offsets already passed) are admitted: the fences make them replays.
        A jump is admitted once the broker confirms the skipped offsets hold no records;
        otherwise the partition is re-read and, until the re-read reaches the expected
        offset, jumping events (fetched before it) are dropped; they come again.
        """
        expected = cursor.next_offset
        for i, event in enumerate(events):  # the common case: no jump at all
            offset = event.message.offset
            if offset == expected:
                expected += 1
            elif offset > expected:
                break
        else:
            i = len(events)
        if expected != cursor.next_offset:
            cursor.advance_to(expected)
        if i == len(events):
            return events
        return await self._admit_rest(partition, cursor, events, i)

    async def _admit_rest(self, partition: int, cursor: Cursor, events: list[EventT],
                          i: int) -> list[EventT]:
        admitted: list[EventT] = events[:i]
        while i < len(events):
            event = events[i]
            offset = event.message.offset
            if offset < cursor.next_offset:
                admitted.append(event)
            elif offset == cursor.next_offset or offset == cursor.verified_next:
                admitted.append(event)
                cursor.advance_to(offset + 1)
            elif cursor.rereading_since is not None:
                if time.monotonic() - cursor.rereading_since > REREAD_PATIENCE_S:
                    cursor.rereading_since = None  # the re-read never came: ask again
                    continue
            elif await self._accept_jump(partition, cursor, offset):
                continue  # verified_next == offset now
            i += 1
        return admitted

    async def _report_retention_loss(self, partition: int, start: int, offset: int) -> None:
        """A jump over offsets the log no longer starts before: deleted unread. Said loudly."""
        log_start = await self.probe.log_start(partition)
        if log_start is None or log_start <= start:
            log.info("partition %s: offsets %s..%s hold no records (transaction markers or "
                     "compaction)", partition, start, offset - 1)
            return
        lost_through = min(log_start, offset) - 1
        log.error("partition %s: offsets %s..%s were deleted by the topic's retention (or "
                  "delete-records) before they were counted: up to %s orders are missing from "
                  "the statistics", partition, start, lost_through, lost_through - start + 1)
        metrics.LOST_OFFSETS.labels(self.topic, str(partition)).inc(lost_through - start + 1)

    async def _accept_jump(self, partition: int, cursor: Cursor, offset: int) -> bool:
        """Whether the partition may go on at ``offset``; if not, it is re-read (seek)."""
        start = cursor.next_offset
        log.info("partition %s: offset %s follows %s; asking the broker what lies between",
                 partition, offset, start - 1)
        committed = await self.probe.committed(partition)
        if committed is not None and committed > start:
            # Only `orderstats replay` moves the group past what was written here.
            log.info("partition %s: group repositioned to %s, skipping %s..%s", partition,
                     committed, start, committed - 1)
            start = committed
        first = await self.probe.first_offset(partition, start)
        if first is not None and first >= offset:
            if offset > start:
                await self._report_retention_loss(partition, start, offset)
            cursor.verified_next = offset
            return True
        log.warning("partition %s: offsets %s..%s were not delivered (rebalance); re-reading "
                    "from %s", partition, start, offset - 1, start)
        metrics.REREADS.inc()
        cursor.verified_next = first if first is not None and first > start else None
        cursor.next_offset = start
        cursor.rereading_since = time.monotonic()
        try:
            await self.seek({TP(self.topic, partition): start})
        except Exception as exc:  # revoked meanwhile: its next owner starts from the commit
            log.warning("partition %s: re-read not started (%r)", partition, exc)
        return False
