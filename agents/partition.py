"""What the agent keeps in memory for one assigned partition, and how it is reloaded."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from agents.admission import Cursor
from tables.closing import OpenWindows
from tables.dedup import DedupIndex, Segment
from tables.keys import WindowKey
from tables.schema import StatsTables
from tables.values import ORDERS, REPARTITION, SOURCES, DedupSegmentValue, Progress

log = logging.getLogger(__name__)


@dataclass
class PartitionState:
    """One assigned partition (of both sources): progress, dedup index, admission cursors."""

    last_offsets: list[int]  # per source: the highest offset applied (or forwarded)
    watermark_ms: int
    next_seq: int
    dedup: DedupIndex
    cursors: dict[int, Cursor] = field(default_factory=dict)  # per source
    committable: dict[int, int] = field(default_factory=dict)  # per source: written below this
    dlq_next: int = -1  # dead-letter partition offset after this partition's last letter
    # Source records past the progress whose dead letter is already in the topic (a kill
    # between its ack and the progress write); None until checked at the first batch.
    lettered: set[tuple[str, int]] | None = None
    sweep_from: bytes | None = None  # where the retention sweep goes on (None: from the start)
    next_sweep: float = 0.0  # monotonic time of the next full pass
    # Closing windows (agents/closer.py): the open ones, when an event last came (wall ms;
    # the load time until one does), closed windows to publish again, and the close time up
    # to which every result is confirmed published (in the progress record).
    open_windows: OpenWindows = field(default_factory=OpenWindows)
    last_event_wall_ms: int = 0
    unpublished: set[WindowKey] = field(default_factory=set)
    results_confirmed_ms: int = 0
    scanned: bool = False  # the windows were scanned since this worker may publish
    # A scan's findings are merged (agents/window_scan.py): until then nothing closes.
    windows_indexed: bool = False
    scan: Any = None  # the scan running (agents/window_scan.WindowScan), if any
    # Invalid events were met while this epoch did not serve (a shadow): their dead letters
    # are handed over at the switch (agents/orders.py OrderBatchProcessor.hand_over).
    letters_deferred: bool = False
    # Per source: every table write of events up to this offset is acknowledged by the
    # broker (so in the changelogs); see BatchUnit.prepare, the unchanged keys of a replay.
    durable: list[int] = field(default_factory=lambda: [-1, -1])

    @classmethod
    def load(cls, tables: StatsTables, partition: int, dedup_horizon_ms: int) -> "PartitionState":
        """Reload from the partition's tables (after an assignment, recovery or restart)."""
        progress = Progress.load(tables.progress.get(partition, partition))
        dedup = DedupIndex(dedup_horizon_ms, tables.dedup.local_keys(partition))
        indexed = dedup.catch_up(
            Segment(key[1], *DedupSegmentValue(*value))
            for key, value in tables.dedup.items(partition))
        last = list(progress.last_offsets)
        log.info("partition %s: resuming after offsets %s (orders) and %s (repartition), %s "
                 "dedup segments (%s ids re-indexed)", partition, last[ORDERS],
                 last[REPARTITION], len(dedup.live), indexed)
        return cls(last, progress.watermark_ms, progress.next_seq, dedup,
                   {source: Cursor(last[source] + 1) for source in SOURCES},
                   dlq_next=progress.dlq_next,
                   results_confirmed_ms=progress.results_confirmed_ms,
                   durable=list(progress.durable))

    def progress(self) -> Progress:
        return Progress((self.last_offsets[ORDERS], self.last_offsets[REPARTITION]),
                        self.watermark_ms, self.next_seq, self.dlq_next,
                        self.results_confirmed_ms, (self.durable[ORDERS], self.durable[REPARTITION]))
