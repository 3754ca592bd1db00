"""Where a worker's Python memory goes: periodic tracemalloc snapshots (a diagnostic).

Enabled by ``ORDERSTATS_TRACEMALLOC_FILE``: the worker then traces allocations and every
``interval`` seconds writes the allocation sites that grew most since the first snapshot,
and the largest ones, to that file. It costs throughput (tracemalloc hooks every
allocation), so it is for finding a leak, not for production.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from pathlib import Path

FRAMES = 15
TOP = 25


async def trace_memory(path: str, interval: float = 10.0) -> None:
    """Run until cancelled: write the growth report to ``path`` every ``interval`` s."""
    tracemalloc.start(FRAMES)
    first = tracemalloc.take_snapshot()
    started = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        snap = tracemalloc.take_snapshot()
        current, peak = tracemalloc.get_traced_memory()
        lines = [f"== {time.monotonic() - started:.0f} s: traced {current / 2**20:.1f} MiB "
                 f"(peak {peak / 2**20:.1f} MiB)", "-- grew most since start:"]
        for stat in snap.compare_to(first, "traceback")[:TOP]:
            lines.append(f"{stat.size_diff / 2**20:+8.2f} MiB {stat.count_diff:+9d} blocks")
            lines.extend(f"      {line}" for line in stat.traceback.format()[-6:])
        with Path(path).open("a") as out:
            out.write("\n".join(lines) + "\n")
