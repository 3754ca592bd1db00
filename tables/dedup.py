"""Duplicate-order detection: which (store, order_id) pairs a partition has seen, and where.

Pure logic over a small key-value interface. Each order id remembers the source topic and
offset of its first occurrence: meeting that same occurrence again is a replay (the fence
decides), any other occurrence is a duplicate (skipped); so is an order forwarded twice to
the repartition topic after a crash.

Two layers, so that neither memory nor the changelog grows per order:
* *segments* are the durable record: one changelog-backed table entry per partition per
  batch, holding that batch's new ids. They expire once the partition's stream time
  (highest created_at seen) has moved ``horizon_ms`` past them.
* the *index* is derived from the segments and lives only in the local RocksDB: one key per
  order id -> [first offset, segment seq], looked up in bulk once per batch. An index entry
  counts only while its segment is live, so an index left stale by a rebalance or a restore
  from changelogs can never hide an order; missing entries are re-derived from segments.
"""

from __future__ import annotations

from enum import Enum
from typing import Callable, Iterable, NamedTuple, Protocol

import orjson

from tables.keys import DEDUP_MARKER as MARKER_KEY
from tables.keys import dedup_index_key as index_key
from tables.keys import dumps

CATCH_UP_CHUNK = 20_000  # index entries written at a time: catch-up memory stays bounded

Entry = tuple[str, str, int, int]  # (store_id, order_id, first offset, its source)


class Verdict(Enum):
    NEW = "new"
    REPLAY = "replay"
    DUPLICATE = "duplicate"


class Segment(NamedTuple):
    seq: int
    watermark_ms: int
    entries: list[Entry]


class IndexStore(Protocol):
    """The local key-value store behind the index (a partition's RocksDB)."""

    def get_many(self, keys: list[bytes]) -> list[bytes | None]: ...

    def apply(self, puts: dict[bytes, bytes], deletes: Iterable[bytes]) -> None: ...


class DedupIndex:
    """The seen-orders index of one partition."""

    def __init__(self, horizon_ms: int, store: IndexStore,
                 live: dict[int, int] | None = None) -> None:
        self.horizon_ms = horizon_ms
        self.store = store
        self.live: dict[int, int] = dict(sorted((live or {}).items()))  # seq -> watermark
        self._batch: dict[tuple[str, str], tuple[int, int]] = {}  # -> (offset, source)
        self._pending: list[Entry] = []

    def catch_up(self, segments: Iterable[Segment]) -> int:
        """Index segments newer than the marker (after recovery or a rebalance).

        Written in chunks, so memory does not grow with the number of ids in the horizon
        (a worker that took over a partition, or rebuilt it from changelogs, indexes a day
        of orders here). Segments come in seq order; the first occurrence of an id wins,
        so a chunk never overwrites an entry an earlier chunk wrote for the same id.
        """
        raw = self.store.get_many([MARKER_KEY])[0]
        through = int(raw) if raw is not None else -1
        puts: dict[bytes, bytes] = {}
        newest = through
        written = 0
        for seg in segments:
            self.live[seg.seq] = seg.watermark_ms
            if seg.seq > through:
                for store_id, order_id, offset, *source in seg.entries:
                    puts.setdefault(index_key(store_id, order_id),
                                    dumps([offset, seg.seq, *source]))
                newest = max(newest, seg.seq)
                if len(puts) >= CATCH_UP_CHUNK:
                    written += self._put_new(puts)
                    puts = {}
        self.live = dict(sorted(self.live.items()))
        if newest != through:
            puts[MARKER_KEY] = str(newest).encode()
        return written + self._put_new(puts)

    def _put_new(self, puts: dict[bytes, bytes]) -> int:
        """Write the entries whose id has no live entry yet (an earlier occurrence stays)."""
        keys = [k for k in puts if k != MARKER_KEY]
        for key, found in zip(keys, self.store.get_many(keys)):
            if found is not None and orjson.loads(found)[1] in self.live:
                del puts[key]
        self.store.apply(puts, ())
        return len(puts)

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Look up a batch's ids in one go before :meth:`check` is called for them."""
        unique = list(dict.fromkeys(pairs))
        self._batch = {}
        for pair, raw in zip(unique, self.store.get_many([index_key(*p) for p in unique])):
            if raw is not None:
                offset, seq, *source = orjson.loads(raw)  # entries before sources: 0
                if seq in self.live:
                    self._batch[pair] = (offset, source[0] if source else 0)

    def check(self, store_id: str, order_id: str, offset: int, source: int = 0) -> Verdict:
        """Classify one occurrence; a NEW one is remembered until :meth:`seal`."""
        key = (store_id, order_id)
        first = self._batch.get(key)
        if first is None:
            self._batch[key] = (offset, source)
            self._pending.append((store_id, order_id, offset, source))
            return Verdict.NEW
        return Verdict.REPLAY if first == (offset, source) else Verdict.DUPLICATE

    def seal(self, seq: int, watermark_ms: int) -> Segment | None:
        """Turn the ids added since the last seal into a segment (the caller persists it)."""
        self._batch = {}
        if not self._pending:
            return None
        segment = Segment(seq, watermark_ms, self._pending)
        self._pending = []
        self.live[seq] = watermark_ms
        puts = {index_key(s, o): dumps([off, seq, src]) for s, o, off, src in segment.entries}
        puts[MARKER_KEY] = str(seq).encode()
        self.store.apply(puts, ())
        return segment

    def expire(self, watermark_ms: int, entries_of: Callable[[int], list[Entry]]) -> list[int]:
        """Forget segments older than the horizon; returns their seqs for deletion."""
        limit = watermark_ms - self.horizon_ms
        dropped = [seq for seq, wm in self.live.items() if wm < limit]
        if not dropped:
            return []
        deletes = []
        for seq in dropped:
            del self.live[seq]
            deletes.extend(index_key(e[0], e[1]) for e in entries_of(seq))
        self.store.apply({}, deletes)
        return dropped
