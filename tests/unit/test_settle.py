"""A stopping worker lets its batch in flight finish, then writes nothing more."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import agents.orders as orders
from tests.unit.test_admission import FakeProbe, processor


def recording(proc: orders.OrderBatchProcessor, hold: float) -> list[str]:
    """Replace the batch work by a log of starts and ends that takes ``hold`` seconds."""
    log: list[str] = []

    async def work(events: list) -> None:
        log.append("start")
        await asyncio.sleep(hold)
        log.append("end")

    proc._process = work  # type: ignore[method-assign]
    return log


def test_a_stop_waits_for_the_batch_in_flight_and_no_batch_runs_after_it():
    proc, _ = processor(FakeProbe(list(range(10))))
    log = recording(proc, 0.2)

    async def scenario() -> None:
        batch = asyncio.ensure_future(proc.process([]))
        await asyncio.sleep(0.01)  # the batch holds the lock
        await proc.settle(stopping=True)
        log.append("settled")
        await batch
        await proc.process([])  # delivered during the stop: not written

    asyncio.run(scenario())
    assert log == ["start", "end", "settled"]
    assert proc.stopped


def test_a_rebalance_waits_for_the_batch_and_batches_go_on():
    proc, _ = processor(FakeProbe(list(range(10))))
    log = recording(proc, 0.05)

    async def scenario() -> None:
        batch = asyncio.ensure_future(proc.process([]))
        await asyncio.sleep(0.01)
        await proc.settle(stopping=False)
        log.append("settled")
        await batch
        await proc.process([])

    asyncio.run(scenario())
    assert log == ["start", "end", "settled", "start", "end"]
    assert not proc.stopped


def test_a_stuck_batch_does_not_hold_the_stop(monkeypatch):
    monkeypatch.setattr(orders, "SETTLE_TIMEOUT_S", 0.05)
    proc, _ = processor(FakeProbe(list(range(10))))
    log = recording(proc, 5.0)

    async def scenario() -> float:
        batch = asyncio.ensure_future(proc.process([]))
        await asyncio.sleep(0.01)
        started = asyncio.get_running_loop().time()
        await proc.settle(stopping=True)
        waited = asyncio.get_running_loop().time() - started
        batch.cancel()
        return waited

    waited = asyncio.run(scenario())
    assert waited < 1.0 and proc.stopped and log == ["start"]


def test_a_stop_waits_for_an_idle_close_in_flight():
    """The idle tick is no stream event, so Faust's own wait at a stop does not see it: its
    close, published after the producer stopped, made a clean stop exit 70 in CI."""
    proc, _ = processor(FakeProbe(list(range(10))))
    proc.owned = {0}
    state = proc.partitions[0]
    state.windows_indexed = state.scanned = True
    proc.closer = SimpleNamespace(has_work=lambda state, now_ms: True)  # type: ignore
    proc.unit = SimpleNamespace(prepare=lambda *args: "plan")  # type: ignore
    log: list[str] = []

    async def commit(plans: list) -> None:
        log.append(f"close {plans}")
        await asyncio.sleep(0.2)
        log.append("published")

    proc._commit = commit  # type: ignore[method-assign]

    async def scenario() -> None:
        tick = asyncio.ensure_future(proc.tick())
        await asyncio.sleep(0.01)
        await proc.settle(stopping=True)
        log.append("settled")
        await tick
        await proc.tick()  # a tick after the stop began: nothing

    asyncio.run(scenario())
    assert log == ["close ['plan']", "published", "settled"]
