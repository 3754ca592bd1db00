"""Faust's RocksDB store with one memory budget for the whole worker.

Faust opens one RocksDB per table partition and gives each its own block cache (2 GiB by
default) and memtables, so memory grows with tables x partitions (here 4 x 8 = 32 DBs).
This store shares one block cache among all of them and charges their memtables to it
through a write buffer manager, so RocksDB's memory is capped by a single figure
(``ORDERSTATS_ROCKSDB_CACHE_MB``) however many partitions a worker holds. Selected by the
store URL ``orderstats-rocksdb://``; everything else is Faust's rocksdb store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rocksdict
from faust.stores import STORES
from faust.stores import rocksdb as faust_rocksdb

SCHEME = "orderstats-rocksdb"
_shared: dict[int, tuple[rocksdict.Cache, Any]] = {}


def shared_memory(budget_bytes: int) -> tuple[rocksdict.Cache, Any]:
    """The process-wide block cache and write buffer manager for a budget."""
    if budget_bytes not in _shared:
        cache = rocksdict.Cache(budget_bytes)
        buffers = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            budget_bytes // 2, False, cache)
        _shared[budget_bytes] = (cache, buffers)
    return _shared[budget_bytes]


class SharedMemoryOptions(faust_rocksdb.RocksDBOptions):
    def as_options(self) -> rocksdict.Options:
        """OVERRIDES faust.stores.rocksdb.RocksDBOptions.as_options (faust-streaming 0.15.3):
        the same options, with the shared cache and write buffer manager."""
        cache, buffers = shared_memory(self.block_cache_size)
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        if self.max_open_files is not None:
            options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_write_buffer_manager(buffers)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(cache)
        # Index and filter blocks in the shared cache too: left outside it, every SST file's
        # reader pins its own, so memory grows with the data written (a replay's length).
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        return options

    def open(self, path: Path, *, read_only: bool = False) -> rocksdict.Rdict:
        """OVERRIDES faust.stores.rocksdb.RocksDBOptions.open (faust-streaming 0.15.3): the
        options are also given as the default column family's. Given only ``options``,
        rocksdict (0.3.29) takes the column families' options from the OPTIONS file of an
        existing DB, so every reopen (each restart) would drop the shared cache and the
        table settings for an 8 MB cache of each DB's own."""
        options = self.as_options()
        access = (rocksdict.AccessType.read_write() if self.ttl is None
                  else rocksdict.AccessType.with_ttl(self.ttl))
        db = rocksdict.Rdict(str(path), options=options, column_families={"default": options},
                             access_type=access)
        db.set_read_options(rocksdict.ReadOptions())
        return db


class BoundedMemoryStore(faust_rocksdb.Store):
    """faust.stores.rocksdb.Store with :class:`SharedMemoryOptions` (rebuilt from its own)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.rocksdb_options
        self.rocksdb_options = SharedMemoryOptions(
            max_open_files=o.max_open_files, write_buffer_size=o.write_buffer_size,
            max_write_buffer_number=o.max_write_buffer_number,
            target_file_size_base=o.target_file_size_base,
            block_cache_size=o.block_cache_size, bloom_filter_size=o.bloom_filter_size,
            use_rocksdict=True, ttl=o.ttl)

    async def stop(self) -> None:
        """OVERRIDES faust.stores.rocksdb.Store.stop (faust-streaming 0.15.3), which only
        drops its DBs: one still referenced elsewhere was then destroyed during interpreter
        teardown, after the shared cache's and write buffer manager's owners, and a worker
        once died with SIGSEGV after a clean stop. Each DB is closed here, in order."""
        for db in list(self._dbs.values()):  # PRIVATE FAUST REACH: the store's open DBs
            try:
                db.close()
            except Exception:  # already closed (a revoked partition)
                pass
        await super().stop()


STORES.aliases[SCHEME] = f"{__name__}:BoundedMemoryStore"  # Faust's store registry (public)
STORE_URL = f"{SCHEME}://"
