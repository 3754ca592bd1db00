"""Bulk per-partition access to a Faust RocksDB table: multi-get reads, WriteBatch writes.

A batch's reads are one RocksDB multi-get, its writes one RocksDB WriteBatch plus one
changelog record per key sent straight to Faust's producer. That is what
``table[key] = value`` does per key (RocksDB put, changelog send, persisted-offset
bookkeeping), without Faust's per-record buffer task and without needing a current event
(faust-streaming #497). Faust flushes this producer before it commits offsets, so a batch's
changelog records are durable before the events they cover are committed; recovery,
standbys and rebalancing stay Faust's own.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence

import faust
import orjson
import rocksdict
from faust.types import TP

from app import metrics
from tables import keys


class StorageError(Exception):
    """A table write refused by RocksDB (disk full, read-only or failing disk): nothing of
    the batch counts as written, and the worker must stop before any offset is committed."""


def write_batch(db: Any, batch: rocksdict.WriteBatch, where: Callable[[], str]) -> None:
    """``db.write(batch)``, with RocksDB's failure (rocksdict raises a bare Exception such as
    "IO error: No space left on device: ...") turned into one :class:`StorageError` line
    naming the data directory (``where()``)."""
    try:
        db.write(batch)
    except Exception as exc:
        raise StorageError(f"cannot write to the data directory {where()} "
                           f"(ORDERSTATS_DATA_DIR): {exc}") from None


class LocalKeys:
    """Raw, local-only keys in one partition's RocksDB (see tables.dedup.IndexStore)."""

    def __init__(self, db: Any, where: Callable[[], str] = lambda: "?") -> None:
        self.db = db
        self.where = where

    def get_many(self, raw_keys: list[bytes]) -> list[bytes | None]:
        return self.db.get(raw_keys) if raw_keys else []

    def apply(self, puts: dict[bytes, bytes], deletes: Iterable[bytes]) -> None:
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in puts.items():
            batch.put(key, value)
        for key in deletes:
            batch.delete(key)
        if len(batch):
            write_batch(self.db, batch, self.where)


class PartitionStore:
    """Bulk reads and writes of one Faust RocksDB table, one partition at a time."""

    def __init__(self, app: faust.App, table: faust.Table) -> None:
        self.app = app
        self.table = table
        # Per partition, the future of the last changelog record sent: acks of one partition
        # come in order, so once it is done every earlier record of the partition is durable.
        self.last_sent: dict[int, Any] = {}

    @property
    def changelog_topic(self) -> str:
        return self.table.changelog_topic.get_topic_name()

    def _db(self, partition: int) -> Any:
        # PRIVATE FAUST REACH (faust-streaming 0.15.3, faust.stores.rocksdb.Store
        # ._db_for_partition): the one RocksDB of a table partition. The only private name
        # used outside app/faust_ext; the version guard there pins the release it exists in.
        return self.table.data._db_for_partition(partition)

    def where(self) -> str:
        """The table's data directory, for error messages."""
        return str(self.app.conf.datadir)

    def local_keys(self, partition: int) -> LocalKeys:
        return LocalKeys(self._db(partition), self.where)

    def raw_keys(self, partition: int, from_key: bytes | None = None) -> Iterator[bytes]:
        """Encoded keys of one partition in RocksDB order, optionally from ``from_key`` on."""
        db = self._db(partition)
        return db.keys(from_key=from_key) if from_key is not None else db.keys()

    def items_with_prefix(self, partition: int, prefix: bytes) -> Iterator[tuple[Any, Any]]:
        """Decoded (key, value) pairs whose encoded key starts with ``prefix``."""
        for raw_key, raw_value in self._db(partition).items(from_key=prefix):
            if not raw_key.startswith(prefix):
                break
            yield keys.decode(raw_key), orjson.loads(raw_value)

    def get_many(self, partition: int, wanted: Sequence[Any]) -> list[Any]:
        """Decoded values for ``keys`` in one RocksDB multi-get; None where absent."""
        if not wanted:
            return []
        raw = self._db(partition).get([keys.encode(k) for k in wanted])
        return [None if v is None else orjson.loads(v) for v in raw]

    def get(self, partition: int, key: Any) -> Any:
        return self.get_many(partition, [key])[0]

    def items(self, partition: int) -> Iterator[tuple[Any, Any]]:
        """All (key, value) pairs stored for one partition, decoded."""
        for raw_key, raw_value in self.raw_items(partition):
            yield keys.decode(raw_key), orjson.loads(raw_value)

    def raw_items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """All encoded (key, value) pairs of the table stored for one partition."""
        for raw_key, raw_value in self._db(partition).items():
            if raw_value is not None and keys.is_table_key(raw_key):
                yield raw_key, raw_value

    async def write(self, partition: int, items: Iterable[tuple[Any, Any]],
                    wait: bool = False) -> int:
        """Put (value) or delete (None) keys of one partition: RocksDB and changelog.

        Returns the number of records sent; with ``wait``, once the broker acknowledged
        them (what is published from these values must be recoverable from the changelog). The changelog partition is the source
        partition, as Faust's tables do, so recovery puts every key back where it belongs.
        """
        store = self.table.data
        topic = self.changelog_topic
        send = self.app.producer.send
        batch = rocksdict.WriteBatch(raw_mode=True)
        last = None
        sent = 0
        for key, value in items:
            raw_key = keys.encode(key)
            raw_value = None if value is None else keys.dumps(value)
            if raw_value is None:
                batch.delete(raw_key)
            else:
                batch.put(raw_key, raw_value)
            last = await send(topic, raw_key, raw_value, partition, None, None)
            sent += 1
        if last is None:
            return 0
        write_batch(self._db(partition), batch, self.where)
        tp = TP(topic, partition)

        def persisted(fut: Any) -> None:
            # Records of one partition are acked in order: the last ack covers the batch.
            if not fut.cancelled() and fut.exception() is None:
                try:
                    store.set_persisted_offset(tp, fut.result().offset)
                except Exception:  # disk full: the agent's next write_batch stops the worker
                    pass  # (a lower persisted offset only means a longer recovery)

        last.add_done_callback(persisted)
        self.last_sent[partition] = last
        metrics.CHANGELOG_RECORDS.labels(self.table.name).inc(sent)
        if wait:
            await last
        return sent

    def estimated_keys(self) -> int:
        """Keys over this worker's open partitions, as RocksDB estimates them (cheap)."""
        total = 0
        for db in list(getattr(self.table.data, "_dbs", {}).values()):
            try:
                total += int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
            except Exception:  # a partition closing under us: skip it
                continue
        return total

    def memory_bytes(self) -> dict[str, int]:
        """RocksDB's own memory figures over this worker's open partitions: memtables and
        table readers summed; the block cache (shared by every DB) once."""
        out = {"memtables": 0, "table_readers": 0, "block_cache": 0}
        for db in list(getattr(self.table.data, "_dbs", {}).values()):
            try:
                out["memtables"] += int(db.property_int_value(
                    "rocksdb.cur-size-all-mem-tables") or 0)
                out["table_readers"] += int(db.property_int_value(
                    "rocksdb.estimate-table-readers-mem") or 0)
                out["block_cache"] = max(out["block_cache"], int(db.property_int_value(
                    "rocksdb.block-cache-usage") or 0))
            except Exception:  # a partition closing under us: skip it
                continue
        return out
