"""The product's tables: names, stored shapes, and their changelog topics.

Each table is a Faust RocksDB table (one RocksDB per partition) backed by a compacted
changelog topic with the source topic's partition count. Values are the JSON lists of
:mod:`tables.values`; keys are spelled by :mod:`tables.keys`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import faust
from faust.types import EventT

from app import metrics
from tables.store import PartitionStore

WINDOWS = "windows"  # key [store_id, window start s]  value WindowValue
TOTALS = "totals"  # key store_id                   value TotalsValue
PROGRESS = "progress"  # key partition              value Progress
DEDUP = "dedup"  # key [partition, seq]             value DedupSegmentValue
TABLE_NAMES = (WINDOWS, TOTALS, PROGRESS, DEDUP)

# Faust buffers this many changelog records per partition while recovering a table. A dedup
# segment holds a whole batch's order ids (up to hundreds of KB), so its buffer is small:
# 1000 of them would hold most of a day of order ids in memory at once.
RECOVERY_BUFFER = {WINDOWS: 1000, TOTALS: 1000, PROGRESS: 1000, DEDUP: 4}

HELP = {
    WINDOWS: "per-store tumbling windows: orders, revenue, items",
    TOTALS: "per-store lifetime totals, late orders included",
    PROGRESS: "per-partition last offset and event-time watermark",
    DEDUP: "seen order ids, one segment per partition per batch",
}


def changelog_topic(group: str, table: str) -> str:
    """Faust's changelog topic of ``table`` for the app (consumer group) id ``group``."""
    return f"{group}-{table}-changelog"


def repartition_topic(group: str) -> str:
    """Orders whose record was not keyed and partitioned by store, re-keyed (agents/routing)."""
    return f"{group}-orders-by-store"


@dataclass
class StatsTables:
    windows: PartitionStore
    totals: PartitionStore
    progress: PartitionStore
    dedup: PartitionStore

    @property
    def all(self) -> tuple[PartitionStore, ...]:
        return (self.windows, self.totals, self.progress, self.dedup)


@dataclass(frozen=True)
class TableOptions:
    """How the tables are stored: partitions and the RocksDB memory budget. The store
    itself is the app's ``store`` setting (app/worker.py): Faust takes a custom scheme
    only from there (a table's ``store=`` with it parses as an empty, falsy URL)."""

    partitions: int
    cache_mb: int = 64


def restored_counter(app: faust.App) -> Callable[[EventT], Awaitable[None]]:
    """Faust calls this for each changelog record it reads into a table (recovery and
    standbys): counted by role and partition, so a failover shows whether the new owner
    started from its standby copy (a short active tail) or read the whole changelog."""
    children: dict[tuple[bool, int], Any] = {}

    async def on_changelog_event(event: EventT) -> None:
        tp = event.message.tp
        key = (tp in app.tables.recovery.active_tps, tp.partition)
        child = children.get(key)
        if child is None:
            child = children[key] = metrics.CHANGELOG_RESTORED.labels(
                "active" if key[0] else "standby", str(tp.partition))
        child.inc()

    return on_changelog_event


def define_tables(app: faust.App, options: TableOptions) -> StatsTables:
    """Declare the tables on ``app`` (changelog partitions = the orders topic's)."""
    rocksdb = {"block_cache_size": options.cache_mb * 1024 * 1024,
               "write_buffer_size": 8 * 1024 * 1024,
               "max_write_buffer_number": 2}

    restored = restored_counter(app)

    def table(name: str) -> PartitionStore:
        # key_type None -> json keys (what the router hashes); bytes -> raw (orjson) values
        t = app.Table(name, default=None, value_type=bytes,
                      partitions=options.partitions, options=dict(rocksdb), help=HELP[name],
                      recovery_buffer_size=RECOVERY_BUFFER[name],
                      on_changelog_event=restored)
        return PartitionStore(app, t)

    return StatsTables(*(table(name) for name in TABLE_NAMES))
