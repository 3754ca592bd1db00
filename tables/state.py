"""The product's tables: RocksDB (rocksdict) stores, each backed by a compacted changelog topic.

Values are orjson bytes (raw serializer) laid out as in :mod:`tables.aggregate`.
:class:`PartitionStore` reads and writes a table one partition at a time, in bulk: a batch's
reads are one RocksDB multi-get, its writes one RocksDB WriteBatch plus one changelog record
per key sent straight to Faust's producer. That is what ``table[key] = value`` does per key
(RocksDB put, changelog send, persisted-offset bookkeeping), without Faust's per-record
buffer task and without needing a current event (faust-streaming #497). Faust flushes this
producer before it commits offsets, so a batch's changelog records are durable before the
events they cover are committed; recovery, standbys and rebalancing stay Faust's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import faust
import orjson
import rocksdict
from faust.types import TP

from app.settings import Settings
from tables.rocksdb_memory import SCHEME as ROCKSDB_SCHEME

WINDOWS = "windows"  # key [store_id, window start s]  value [orders, revenue, items, fence]
TOTALS = "totals"  # key store_id                   value [orders, revenue, items, late, fence]
PROGRESS = "progress"  # key partition              value [last offset, watermark ms, next seq]
DEDUP = "dedup"  # key [partition, seq]             value [watermark ms, [[store, order, offset]]]

OFFSET_KEY = b"__faust\0offset__"  # Faust's own bookkeeping key inside every partition DB
LOCAL_PREFIX = b"\x00"  # local-only derived keys (never JSON, never in the changelog)


class LocalKeys:
    """Raw, local-only keys in one partition's RocksDB (see tables.dedup.IndexStore)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        return self.db.get(keys) if keys else []

    def apply(self, puts: dict[bytes, bytes], deletes: Iterable[bytes]) -> None:
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in puts.items():
            batch.put(key, value)
        for key in deletes:
            batch.delete(key)
        if len(batch):
            self.db.write(batch)


class PartitionStore:
    """Direct per-partition reads of a Faust RocksDB table, with Faust's own key encoding."""

    def __init__(self, app: faust.App, table: faust.Table) -> None:
        self.app = app
        self.table = table

    def encode_key(self, key: Any) -> bytes:
        return self.app.serializers.dumps_key(None, key, serializer=self.table.key_serializer)

    def _db(self, partition: int) -> Any:
        # Faust's rocksdb Store keeps one DB per partition; this is its (private) accessor.
        return self.table.data._db_for_partition(partition)

    def local_keys(self, partition: int) -> LocalKeys:
        return LocalKeys(self._db(partition))

    def raw_keys(self, partition: int, from_key: bytes | None = None) -> Iterator[bytes]:
        """Encoded keys of one partition in RocksDB order, optionally from ``from_key`` on."""
        db = self._db(partition)
        return db.keys(from_key=from_key) if from_key is not None else db.keys()

    def items_with_prefix(self, partition: int, prefix: bytes) -> Iterator[tuple[Any, Any]]:
        """Decoded (key, value) pairs whose encoded key starts with ``prefix``."""
        for raw_key, raw_value in self._db(partition).items(from_key=prefix):
            if not raw_key.startswith(prefix):
                break
            yield orjson.loads(raw_key), orjson.loads(raw_value)

    def get_many(self, partition: int, keys: Sequence[Any]) -> list[Any]:
        """Decoded values for ``keys`` in one RocksDB multi-get; None where absent."""
        if not keys:
            return []
        raw = self._db(partition).get([self.encode_key(k) for k in keys])
        return [None if v is None else orjson.loads(v) for v in raw]

    def get(self, partition: int, key: Any) -> Any:
        return self.get_many(partition, [key])[0]

    def items(self, partition: int) -> Iterator[tuple[Any, Any]]:
        """All (key, value) pairs stored for one partition, decoded."""
        for raw_key, raw_value in self._db(partition).items():
            if raw_key == OFFSET_KEY or raw_key.startswith(LOCAL_PREFIX) or raw_value is None:
                continue
            yield orjson.loads(raw_key), orjson.loads(raw_value)

    async def write(self, partition: int, items: Iterable[tuple[Any, Any]]) -> int:
        """Put (value) or delete (None) keys of one partition: RocksDB and changelog.

        Returns the number of records sent. The changelog partition is the source
        partition, as Faust's tables do, so recovery puts every key back where it belongs.
        """
        store = self.table.data
        topic = self.table.changelog_topic.get_topic_name()
        send = self.app.producer.send
        batch = rocksdict.WriteBatch(raw_mode=True)
        last = None
        sent = 0
        for key, value in items:
            raw_key = self.encode_key(key)
            raw_value = None if value is None else orjson.dumps(value)
            if raw_value is None:
                batch.delete(raw_key)
            else:
                batch.put(raw_key, raw_value)
            last = await send(topic, raw_key, raw_value, partition, None, None)
            sent += 1
        if last is None:
            return 0
        self._db(partition).write(batch)
        tp = TP(topic, partition)

        def persisted(fut: Any) -> None:
            # Records of one partition are acked in order: the last ack covers the batch.
            if not fut.cancelled() and fut.exception() is None:
                store.set_persisted_offset(tp, fut.result().offset)

        last.add_done_callback(persisted)
        return sent


@dataclass
class StatsTables:
    windows: PartitionStore
    totals: PartitionStore
    progress: PartitionStore
    dedup: PartitionStore

    @property
    def all(self) -> tuple[PartitionStore, ...]:
        return (self.windows, self.totals, self.progress, self.dedup)


def define_tables(app: faust.App, settings: Settings) -> StatsTables:
    """Declare the tables on ``app`` (changelog partitions = the orders topic's)."""
    # One RocksDB memory budget for all tables and partitions (tables.rocksdb_memory).
    options = {"block_cache_size": settings.rocksdb_cache_mb * 1024 * 1024,
               "write_buffer_size": 8 * 1024 * 1024,
               "max_write_buffer_number": 2}

    def table(name: str, help_: str) -> PartitionStore:
        # key_type None -> json keys (routing hashes them like the producer); bytes -> raw values
        t = app.Table(name, default=None, store=f"{ROCKSDB_SCHEME}://",
                      value_type=bytes, partitions=settings.partitions, options=dict(options),
                      help=help_)
        return PartitionStore(app, t)

    return StatsTables(
        windows=table(WINDOWS, "per-store tumbling windows: orders, revenue, items"),
        totals=table(TOTALS, "per-store lifetime totals, late orders included"),
        progress=table(PROGRESS, "per-partition last offset and event-time watermark"),
        dedup=table(DEDUP, "seen order ids, one segment per partition per batch"),
    )
