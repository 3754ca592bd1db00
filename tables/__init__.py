"""State: table schema, key encoding, stored shapes, the pure fence/window/dedup logic, and
bulk per-partition RocksDB access.

Note: PyTables also installs a top-level package named ``tables``; keep it out of the venv.
"""
