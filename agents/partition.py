"""What the agent keeps in memory for one assigned partition, and how it is reloaded."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from agents.admission import Cursor
from tables.dedup import DedupIndex, Segment
from tables.schema import StatsTables
from tables.values import DedupSegmentValue, Progress

log = logging.getLogger(__name__)


@dataclass
class PartitionState:
    """One assigned partition: progress, dedup index, admission cursor, retention sweep."""

    last_offset: int
    watermark_ms: int
    next_seq: int
    dedup: DedupIndex
    cursor: Cursor = field(default_factory=lambda: Cursor(0))
    committable: int | None = None  # offsets below this were written in this assignment
    sweep_from: bytes | None = None  # where the retention sweep goes on (None: from the start)
    next_sweep: float = 0.0  # monotonic time of the next full pass

    @classmethod
    def load(cls, tables: StatsTables, partition: int, dedup_horizon_ms: int) -> "PartitionState":
        """Reload from the partition's tables (after an assignment, recovery or restart)."""
        progress = Progress.load(tables.progress.get(partition, partition))
        dedup = DedupIndex(dedup_horizon_ms, tables.dedup.local_keys(partition))
        indexed = dedup.catch_up(
            Segment(key[1], *DedupSegmentValue(*value))
            for key, value in tables.dedup.items(partition))
        log.info("partition %s: resuming after offset %s, %s dedup segments (%s ids "
                 "re-indexed)", partition, progress.last_offset, len(dedup.live), indexed)
        return cls(progress.last_offset, progress.watermark_ms, progress.next_seq, dedup,
                   Cursor(progress.last_offset + 1))
