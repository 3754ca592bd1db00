"""glibc malloc tuning, so a worker's native memory does not follow the work it has done.

The Python heap of a worker is flat (tracemalloc), yet its RSS during a replay grew with the
replay's length: the growth is in glibc's malloc. RocksDB's flush and compaction threads,
aiokafka's decompression and orjson allocate and free in many sizes from many threads, and
glibc gives each thread an arena of its own (up to 8 per core) and only returns memory to
the kernel from the top of each heap. Freed chunks in the middle stay resident, so RSS keeps
the high-water mark of every arena and creeps up with the allocation history. Two knobs, both
plain glibc (``mallopt``/``malloc_trim`` via ctypes; anything else, e.g. musl or macOS, is
left alone):

* ``M_ARENA_MAX`` (``ORDERSTATS_MALLOC_ARENA_MAX``): fewer arenas, less memory parked in
  idle ones. It only limits arenas created afterwards, so it is set while the app is built,
  before RocksDB or the executor start threads.
* ``M_MMAP_THRESHOLD`` (``ORDERSTATS_MALLOC_MMAP_THRESHOLD``, bytes): allocations this size
  or larger get pages of their own (``mmap``), returned to the kernel when freed. glibc
  starts at 128 KiB but raises the threshold each time such a block is freed (up to 32 MiB),
  after which RocksDB's memtable arena blocks and large read buffers come from the heaps
  instead, where they leave holes that keep RSS at the high-water mark. Setting it fixes it
  (and turns that adjustment off): the replay peak after a restore from changelogs fell from
  240 to 197 MB at 500,000 events.
* ``malloc_trim(0)`` every ``ORDERSTATS_MALLOC_TRIM_S`` seconds: gives the free pages inside
  every arena back to the kernel (``MADV_DONTNEED``), not only the top of the main heap.
  It takes a few milliseconds on a worker's heap (up to ~50 ms right after a large free), so
  it runs in a thread of its own, off the event loop.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
from functools import lru_cache

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
ARENA_MAX_DEFAULT = 2
MMAP_THRESHOLD_DEFAULT = 128 * 1024  # glibc's initial value, kept fixed
TRIM_INTERVAL_DEFAULT_S = 10.0


@lru_cache(maxsize=1)
def glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
    except (OSError, AttributeError):
        log.debug("not glibc: native memory tuning off")
        return None
    return libc


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        log.warning("%s=%r is not a number; using %s", name, raw, default)
        return default


def arena_max() -> int:
    """``ORDERSTATS_MALLOC_ARENA_MAX``; 0 leaves glibc's default (8 per core)."""
    return max(0, int(_env_number("ORDERSTATS_MALLOC_ARENA_MAX", ARENA_MAX_DEFAULT)))


def mmap_threshold() -> int:
    """``ORDERSTATS_MALLOC_MMAP_THRESHOLD``; 0 leaves glibc's own (adjusting) threshold."""
    return max(0, int(_env_number("ORDERSTATS_MALLOC_MMAP_THRESHOLD", MMAP_THRESHOLD_DEFAULT)))


def trim_interval_s() -> float:
    """``ORDERSTATS_MALLOC_TRIM_S``; 0 turns the periodic trim off."""
    return max(0.0, _env_number("ORDERSTATS_MALLOC_TRIM_S", TRIM_INTERVAL_DEFAULT_S))


def limit_arenas(limit: int | None = None) -> bool:
    """Cap glibc's malloc arenas; call before threads are started. True if it was set."""
    limit = arena_max() if limit is None else limit
    libc = glibc()
    if libc is None or limit <= 0:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, limit))


def fix_mmap_threshold(threshold: int | None = None) -> bool:
    """Give allocations of ``threshold`` bytes or more their own pages, for good (glibc
    otherwise raises the threshold as such blocks are freed). True if it was set."""
    threshold = mmap_threshold() if threshold is None else threshold
    libc = glibc()
    if libc is None or threshold <= 0:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))


def trim() -> bool:
    """Return free malloc memory of every arena to the kernel. True if some was."""
    libc = glibc()
    return libc is not None and bool(libc.malloc_trim(0))


async def trim_periodically(interval_s: float | None = None) -> None:
    """Run :func:`trim` every ``interval_s`` seconds, forever (a worker task)."""
    interval_s = trim_interval_s() if interval_s is None else interval_s
    if glibc() is None or interval_s <= 0:
        return
    while True:
        await asyncio.sleep(interval_s)
        await asyncio.to_thread(trim)  # up to ~50 ms after a large free: off the event loop
