"""The one home of key encoding: how every table key and every local-only key is spelled.

Table keys are compact JSON (the bytes Faust's ``json`` key serializer writes, which its
router hashes and its changelog recovery restores). Local-only keys start with a NUL byte,
so they can never be mistaken for a JSON table key and never reach a changelog.
"""

from __future__ import annotations

from typing import Any

import orjson

# (store_id, window start in epoch seconds) for the base size; rollup windows (hours, days)
# add the size's name: (store_id, start, "1h"), tables/windows.py Rollups.
WindowKey = tuple[str, int] | tuple[str, int, str]

OFFSET_KEY = b"__faust\0offset__"  # Faust's own bookkeeping key inside every partition DB
LOCAL_PREFIX = b"\x00"  # local-only derived keys (never JSON, never in the changelog)
DEDUP_INDEX_PREFIX = LOCAL_PREFIX + b"seen:"
DEDUP_MARKER = LOCAL_PREFIX + b"seen-indexed-through"


def dumps(value: Any) -> bytes:
    """Compact JSON in a bytes object of its own size.

    orjson returns bytes that keep their whole write buffer (about 4 KiB each with orjson
    3.12+, 1 KiB before), so every result that is kept (a batch of keys, the dedup index
    entries of a catch-up, the values of a write) costs that much. The copy is exact-size.
    """
    return orjson.dumps(value).decode().encode()


def encode(key: Any) -> bytes:
    """A table key as stored and changelogged: ``"s-1"``, ``["s-1",1700000040]``, ``3``."""
    return dumps(key)


def decode(raw: bytes) -> Any:
    return orjson.loads(raw)


def window_key(store_id: str, start_s: int, size: str | None = None) -> list:
    return [store_id, start_s] if size is None else [store_id, start_s, size]


def store_windows_prefix(store_id: str) -> bytes:
    """Every window key of ``store_id`` starts with these bytes (keys sort by store first)."""
    return orjson.dumps([store_id])[:-1] + b","  # a slice copies: exact-size


def is_window_key(raw: bytes) -> bool:
    return raw.startswith(b"[")


def dedup_segment_key(partition: int, seq: int) -> list:
    return [partition, seq]


def dedup_index_key(store_id: str, order_id: str) -> bytes:
    return DEDUP_INDEX_PREFIX + orjson.dumps([store_id, order_id])


def is_table_key(raw: bytes) -> bool:
    """False for Faust's offset bookkeeping and our local-only keys."""
    return raw != OFFSET_KEY and not raw.startswith(LOCAL_PREFIX)
