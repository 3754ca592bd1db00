"""Duplicate-order detection: which (store, order_id) pairs a partition has seen, and where.

Pure logic over a small key-value interface. Each order id remembers the offset of its
first occurrence: meeting that offset again is a replay (the fence decides), any other
offset is a duplicate (skipped).

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

Entry = tuple[str, str, int]  # (store_id, order_id, first offset)


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
        self._batch: dict[tuple[str, str], int] = {}
        self._pending: list[Entry] = []

    def catch_up(self, segments: Iterable[Segment]) -> int:
        """Index segments newer than the marker (after recovery or a rebalance)."""
        raw = self.store.get_many([MARKER_KEY])[0]
        through = int(raw) if raw is not None else -1
        puts: dict[bytes, bytes] = {}
        newest = through
        for seg in segments:
            self.live[seg.seq] = seg.watermark_ms
            if seg.seq > through:
                for store_id, order_id, offset in seg.entries:
                    puts.setdefault(index_key(store_id, order_id),
                                    orjson.dumps([offset, seg.seq]))
                newest = max(newest, seg.seq)
        self.live = dict(sorted(self.live.items()))
        if newest != through:
            puts[MARKER_KEY] = str(newest).encode()
        self.store.apply(puts, ())
        return len(puts)

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Look up a batch's ids in one go before :meth:`check` is called for them."""
        unique = list(dict.fromkeys(pairs))
        self._batch = {}
        for pair, raw in zip(unique, self.store.get_many([index_key(*p) for p in unique])):
            if raw is not None:
                offset, seq = orjson.loads(raw)
                if seq in self.live:
                    self._batch[pair] = offset

    def check(self, store_id: str, order_id: str, offset: int) -> Verdict:
        """Classify one occurrence; a NEW one is remembered until :meth:`seal`."""
        key = (store_id, order_id)
        first = self._batch.get(key)
        if first is None:
            self._batch[key] = offset
            self._pending.append((store_id, order_id, offset))
            return Verdict.NEW
        return Verdict.REPLAY if first == offset else Verdict.DUPLICATE

    def seal(self, seq: int, watermark_ms: int) -> Segment | None:
        """Turn the ids added since the last seal into a segment (the caller persists it)."""
        self._batch = {}
        if not self._pending:
            return None
        segment = Segment(seq, watermark_ms, self._pending)
        self._pending = []
        self.live[seq] = watermark_ms
        puts = {index_key(s, o): orjson.dumps([off, seq]) for s, o, off in segment.entries}
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
            deletes.extend(index_key(s, o) for s, o, _off in entries_of(seq))
        self.store.apply({}, deletes)
        return dropped
