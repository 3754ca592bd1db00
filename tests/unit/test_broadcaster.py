"""The /api/stream broadcaster: one computation per topic per tick, whatever the number of
viewers; the same bytes for every viewer; nothing sent when nothing changed."""

from __future__ import annotations

import asyncio

from app.web.stream import Broadcaster, sse_frame


class Source:
    """A compute function that counts its calls and returns a settable value per topic."""

    def __init__(self) -> None:
        self.calls: list[object] = []
        self.values: dict[object, object] = {}

    async def compute(self, topic: object) -> tuple[str, object]:
        self.calls.append(topic)
        return "top", {"topic": str(topic), "value": self.values.get(topic, 0)}


def run(coro):
    return asyncio.run(coro)


def test_one_computation_per_tick_for_many_subscribers_and_same_bytes():
    async def scenario() -> None:
        src = Source()
        b = Broadcaster(src.compute, interval=3600)  # ticks driven by hand below
        subs = [b.subscribe([("top", 10)]) for _ in range(50)]
        first = [await s.next(timeout=1) for s in subs]  # the first round runs at once
        assert src.calls == [("top", 10)]
        assert all(len(f) == 1 for f in first)
        assert all(f[0] is first[0][0] for f in first)  # one encoding, shared
        assert first[0][0] == sse_frame("top", {"topic": "('top', 10)", "value": 0})

        src.values[("top", 10)] = 1
        await b.tick()
        assert len(src.calls) == 2  # still one computation for 50 viewers
        second = [await s.next(timeout=1) for s in subs]
        assert all(f == [second[0][0]] for f in second)
        assert b"\"value\":1" in second[0][0]
        await b.close()

    run(scenario())


def test_no_message_when_nothing_changed():
    async def scenario() -> None:
        src = Source()
        b = Broadcaster(src.compute, interval=3600)
        sub = b.subscribe([("top", 10)])
        await asyncio.sleep(0)
        assert len(await sub.next(timeout=1)) == 1
        await b.tick()
        await b.tick()
        assert len(src.calls) == 3  # computed every tick...
        assert await sub.next(timeout=0.05) == []  # ...but nothing new was sent
        await b.close()

    run(scenario())


def test_topics_are_computed_once_each_and_sent_only_to_their_viewers():
    async def scenario() -> None:
        src = Source()
        b = Broadcaster(src.compute, interval=3600)
        plain = [b.subscribe([("top", 10)]) for _ in range(3)]
        store = [b.subscribe([("top", 10), ("store", "s-1")]) for _ in range(3)]
        for s in plain:
            assert len(await s.next(timeout=1)) == 1
        for s in store:
            assert len(await s.next(timeout=1)) == 2
        assert sorted(map(str, src.calls)) == ["('store', 's-1')", "('top', 10)"]
        src.values[("store", "s-1")] = 5
        await b.tick()
        for s in plain:
            assert await s.next(timeout=0.05) == []
        for s in store:
            (frame,) = await s.next(timeout=1)
            assert b"s-1" in frame
        await b.close()

    run(scenario())


def test_a_slow_viewer_keeps_only_the_newest_message_and_a_late_one_gets_the_last():
    async def scenario() -> None:
        src = Source()
        b = Broadcaster(src.compute, interval=3600)
        slow = b.subscribe([("top", 10)])
        await asyncio.sleep(0)
        for v in range(1, 6):
            src.values[("top", 10)] = v
            await b.tick()
        frames = await slow.next(timeout=1)
        assert len(frames) == 1 and b"\"value\":5" in frames[0]
        late = b.subscribe([("top", 10)])
        assert await late.next(timeout=1) == frames  # no wait for the next change
        await b.close()

    run(scenario())


def test_the_task_runs_only_while_someone_watches_and_close_ends_every_stream():
    async def scenario() -> None:
        src = Source()
        b = Broadcaster(src.compute, interval=0.01)
        sub = b.subscribe([("top", 10)])
        await asyncio.sleep(0.05)
        assert len(src.calls) >= 2  # ticking
        b.unsubscribe(sub)
        await asyncio.sleep(0.03)
        calls = len(src.calls)
        await asyncio.sleep(0.05)
        assert len(src.calls) == calls  # stopped: nobody watches
        again = b.subscribe([("top", 10)])
        await asyncio.sleep(0.03)
        assert len(src.calls) > calls  # restarted for the new viewer
        await b.close()
        assert again.closed and await again.next(timeout=1) == []
        assert b.subscribe([("top", 10)]).closed  # after close, streams end at once

    run(scenario())


def test_a_failing_computation_sends_nothing_and_the_next_round_recovers():
    async def scenario() -> None:
        state = {"fail": True}

        async def compute(topic: object) -> tuple[str, object]:
            if state["fail"]:
                raise RuntimeError("boom")
            return "top", {"ok": True}

        b = Broadcaster(compute, interval=3600)
        sub = b.subscribe([("top", 1)])
        await asyncio.sleep(0)
        assert await sub.next(timeout=0.05) == []
        state["fail"] = False
        await b.tick()
        assert await sub.next(timeout=1) == [sse_frame("top", {"ok": True})]
        await b.close()

    run(scenario())
