"""The retention sweep: finding a partition's windows that fell out of the retention.

Faust's own window expiry uses the wall clock and forgets recovered windows (#385); this
bounded, resumable sweep keeps the store's size bounded by the retention. Each batch scans
the next slice of keys; after a full pass it rests for SWEEP_PAUSE_S, so the hot path
rarely pays for it.
"""

from __future__ import annotations

import time
from typing import Any

from agents.partition import PartitionState
from tables import keys
from tables.store import PartitionStore
from tables.windows import NO_ROLLUPS, Rollups, TumblingWindows

SWEEP_KEYS_PER_BATCH = 5_000
SWEEP_PAUSE_S = 30.0  # between full passes over a partition's windows


def expired_windows(store: PartitionStore, partition: int, state: PartitionState,
                    windows: TumblingWindows, cutoff_ms: int, rollups: Rollups = NO_ROLLUPS,
                    now_ms: int = 0) -> list[Any]:
    """Keys of the next slice of the partition's windows that are past the retention (the
    base windows' ``cutoff_ms``; each rollup's own, at ``now_ms``)."""
    now = time.monotonic()
    if state.sweep_from is None and now < state.next_sweep:
        return []
    expired = []
    scanned = 0
    last = None
    for raw_key in store.raw_keys(partition, state.sweep_from):
        scanned += 1
        last = raw_key
        if keys.is_window_key(raw_key):
            key = keys.decode(raw_key)
            if len(key) == 2:
                if not windows.is_retained(key[1], cutoff_ms):
                    expired.append(key)
            elif not rollups.is_retained(key[2], key[1], now_ms):
                expired.append(key)
        if scanned >= SWEEP_KEYS_PER_BATCH:
            break
    if scanned >= SWEEP_KEYS_PER_BATCH:
        state.sweep_from = last
    else:
        state.sweep_from = None
        state.next_sweep = now + SWEEP_PAUSE_S
    return expired
