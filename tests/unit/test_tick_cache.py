"""The per-tick answer cache (single flight) and the heap top-N of merge_parts."""

from __future__ import annotations

import asyncio
import random

from app.settings import Settings
from app.web.merge import merge_parts
from app.web.tick_cache import TickCache


def test_one_computation_per_tick_shared_by_concurrent_askers():
    now = [0.0]
    cache = TickCache(1.0, lambda: now[0])
    calls = []

    async def compute():
        calls.append(1)
        await asyncio.sleep(0.01)
        return len(calls)

    async def scenario():
        assert set(await asyncio.gather(*(cache.get("k", compute) for _ in range(20)))) == {1}
        assert await cache.get("k", compute) == 1
        now[0] = 0.99
        assert await cache.get("k", compute) == 1
        now[0] = 1.0
        assert await cache.get("k", compute) == 2
        assert cache.get_sync("s", lambda: "a") == "a"
        assert cache.get_sync("s", lambda: "b") == "a"
        now[0] = 5.0
        assert cache.get_sync("s", lambda: "b") == "b"
        assert set(cache._done) == {"s"}  # stale answers are forgotten

    asyncio.run(scenario())
    assert len(calls) == 2


def test_a_failed_computation_is_not_cached():
    cache = TickCache(1.0, lambda: 0.0)

    async def boom():
        raise ValueError("x")

    async def ok():
        return 7

    async def scenario():
        try:
            await cache.get("k", boom)
        except ValueError:
            pass
        else:
            raise AssertionError("no error")
        assert await cache.get("k", ok) == 7

    asyncio.run(scenario())


def _store(sid: str, orders: int, revenue: int | None) -> dict:
    totals = {"orders": orders, "revenue": revenue, "revenue_by_currency": {}, "items": 0,
              "late": 0}
    return {"store_id": sid, "current": {}, "previous": {}, "totals": totals}


def test_heap_top_n_equals_the_full_sort():
    rng = random.Random(7)
    parts = {f"http://w{w}": {"partitions": [w], "progress": {}, "stores": [
        _store(f"s-{w}-{i:04d}", rng.randint(0, 20), rng.choice([None, rng.randint(0, 50)]))
        for i in range(400)]} for w in range(3)}
    everything = [s for p in parts.values() for s in p["stores"]]
    for sort in ("orders", "revenue"):
        full = sorted(everything, key=lambda s: (-(s["totals"][sort] or 0), s["store_id"]))
        for limit in (1, 5, 100, 299, 300, 1199, 1200, 5000):
            merged = merge_parts(parts, Settings(partitions=3), sort, limit)
            assert merged["stores"] == full[:limit], (sort, limit)
            assert merged["count"] == 1200
