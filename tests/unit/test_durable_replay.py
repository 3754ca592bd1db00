"""A replay below the acknowledged offsets writes only what it changes (agents/batch.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from agents.batch import drop_unchanged, when_acked
from tables.fence import BatchResult
from tables.values import ORDERS, REPARTITION, Progress, TotalsValue, WindowValue


def test_unchanged_keys_are_left_out_and_changed_ones_kept():
    same = WindowValue(2, {"EUR": 10}, 3, (7, -1))
    moved = WindowValue(3, {"EUR": 15}, 4, (9, -1))
    result = BatchResult(windows={("s", 0): same, ("s", 60): moved},
                         totals={"s": TotalsValue(5, {"EUR": 25}, 7, 0, (9, -1))})
    drop_unchanged(result, {("s", 0): same, ("s", 60): WindowValue(2, {"EUR": 10}, 3, (7, -1))},
                   {"s": TotalsValue(4, {"EUR": 20}, 6, 0, (7, -1))})
    assert list(result.windows) == [("s", 60)] and list(result.totals) == ["s"]
    result = BatchResult(windows={("s", 0): same}, totals={"s": TotalsValue(1, {}, 1, 0, (3, -1))})
    drop_unchanged(result, {("s", 0): same}, {"s": TotalsValue(1, {}, 1, 0, (3, -1))})
    assert result.windows == {} and result.totals == {}


def test_offsets_become_durable_only_when_every_table_acked():
    async def run() -> tuple[list[int], list[int]]:
        loop = asyncio.get_running_loop()
        a, b = loop.create_future(), loop.create_future()
        state = SimpleNamespace(durable=[-1, -1])
        when_acked([a, None, b], state, {ORDERS: 41})
        a.set_result(None)
        await asyncio.sleep(0)
        before = list(state.durable)
        b.set_result(None)
        for _ in range(3):
            await asyncio.sleep(0)
        failed = SimpleNamespace(durable=[-1, -1])
        c = loop.create_future()
        when_acked([c], failed, {ORDERS: 50, REPARTITION: 3})
        c.set_exception(RuntimeError("broker away"))
        for _ in range(3):
            await asyncio.sleep(0)
        return before, state.durable, failed.durable

    before, after, failed = asyncio.run(run())
    assert before == [-1, -1] and after == [41, -1] and failed == [-1, -1]


def test_the_durable_offsets_ride_in_the_progress_record():
    progress = Progress((10, 4), 5, 6, 7, 8, (9, 3))
    assert Progress.load(progress.dump()) == progress
    assert Progress.load([10, 5, 6, 4, 7]).durable == (-1, -1)  # an older record
