"""The worker's tables run on the bounded-memory RocksDB store, also after a restart.

Both were silently false before: Faust took the tables' empty store URL as "no store" and
used its stock store (a block cache per partition), and rocksdict reopened an existing DB
with the column-family options of its OPTIONS file (an 8 MB cache per partition, no
memtables charged), so the one memory budget was never in force after a restart.
"""

from __future__ import annotations

from pathlib import Path

import rocksdict

from app.faust_ext.rocksdb_memory import BoundedMemoryStore, SharedMemoryOptions
from app.settings import Settings
from app.worker import build_app

BUDGET = 16 * 2**20


def test_every_table_of_the_worker_is_on_the_bounded_memory_store():
    orderstats = build_app(Settings(rocksdb_cache_mb=16), worker=False)
    for store in orderstats.tables.all:
        data = store.table.data
        assert type(data) is BoundedMemoryStore, store.table.name
        assert isinstance(data.rocksdb_options, SharedMemoryOptions)
        assert data.rocksdb_options.block_cache_size == BUDGET
        # the files keep Faust's names: existing data directories stay readable
        assert str(data.basename) == store.table.name


def _fill(db: rocksdict.Rdict, n: int) -> None:
    batch = rocksdict.WriteBatch(raw_mode=True)
    for i in range(n):
        batch.put(b"key-%08d" % i, b"v" * 100)
    db.write(batch)


def _options_file(path: Path) -> str:
    return max(path.glob("OPTIONS-*"), key=lambda p: int(p.name.split("-")[1])).read_text()


def test_a_reopened_db_keeps_the_shared_cache_and_charges_its_memtables_to_it(tmp_path):
    options = SharedMemoryOptions(block_cache_size=BUDGET, write_buffer_size=4 * 2**20,
                                  max_write_buffer_number=2, use_rocksdict=True)
    path = tmp_path / "t-0.db"
    db = options.open(path)
    _fill(db, 1000)
    db.flush()
    db.close()

    db = options.open(path)  # a restart: the DB and its OPTIONS file exist
    try:
        assert db.property_int_value("rocksdb.block-cache-capacity") == BUDGET
        assert "cache_index_and_filter_blocks=true" in _options_file(path)
        _fill(db, 20_000)
        memtables = db.property_int_value("rocksdb.cur-size-all-mem-tables")
        assert memtables > 1 * 2**20
        # the write buffer manager reserves the memtables' memory in the shared cache
        assert db.property_int_value("rocksdb.block-cache-usage") >= memtables
        assert db[b"key-00000999"] == b"v" * 100  # the data written before the restart
    finally:
        db.close()


def test_two_partitions_share_one_cache(tmp_path):
    options = SharedMemoryOptions(block_cache_size=BUDGET, use_rocksdict=True)
    first, second = options.open(tmp_path / "a.db"), options.open(tmp_path / "b.db")
    try:
        _fill(first, 20_000)
        # the second DB wrote nothing, yet sees the first one's memtables in its cache
        assert second.property_int_value("rocksdb.block-cache-usage") >= \
            first.property_int_value("rocksdb.cur-size-all-mem-tables") > 0
    finally:
        first.close()
        second.close()
