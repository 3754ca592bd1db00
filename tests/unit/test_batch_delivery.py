"""A partition's fetched run delivered as one unit (app/faust_ext/conductor.py, consumer.py)
and a finished batch acked under one lock (app/faust_ext/stream.py): the same events, in the
same order, the same read offsets and the same acks as the message-by-message path."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from app.faust_ext import RawBytesSchema
from app.faust_ext.stream import ack_all

TOPIC = "orders"
PARTITION = TP(TOPIC, 3)


def message(offset: int, refcount: int = 1) -> ConsumerMessage:
    m = ConsumerMessage(TOPIC, PARTITION.partition, offset, 1.0, 0, [], b"k",
                        b'{"v": %d}' % offset, None, 1, 8, PARTITION)
    m.refcount = refcount
    return m


class Ledger:
    """A consumer whose ack records what it was given (Consumer.ack's contract)."""

    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, m: Any) -> bool:
        if m.acked:
            return False
        m.acked = True
        self.acked.append(m.offset)
        return True


class Event:
    def __init__(self, m: ConsumerMessage) -> None:
        self.message = m


def test_ack_all_matches_message_ack_one_by_one() -> None:
    refcounts = [1, 2, 0, 1, 3]
    stock, ours = Ledger(), Ledger()
    stock_msgs = [message(i, r) for i, r in enumerate(refcounts)]
    our_msgs = [message(i, r) for i, r in enumerate(refcounts)]
    our_msgs[3].acked = stock_msgs[3].acked = True  # acked already: left alone
    for m in stock_msgs:
        m.ack(stock)  # what Event.ack does
    ack_all(ours, [Event(m) for m in our_msgs])
    assert ours.acked == stock.acked == [0, 2]
    assert [m.refcount for m in our_msgs] == [m.refcount for m in stock_msgs]
    assert [m.acked for m in our_msgs] == [m.acked for m in stock_msgs]


def _app() -> faust.App:
    app = faust.App(f"test-delivery-{id(object())}", broker="orderstats://127.0.0.1:1",
                    store="memory://", web_enabled=False)
    app.flow_control.resume()  # as a running worker's (suspended until it starts)
    return app


def test_deliver_run_puts_every_event_in_order_and_records_read_offsets() -> None:
    async def run() -> None:
        app = _app()
        channel = app.topic(TOPIC, schema=RawBytesSchema(key_serializer="raw",
                                                         value_serializer="raw"))
        conductor = app.topics
        handler = conductor._build_handler(PARTITION, {channel})
        conductor._tp_to_callback[PARTITION] = handler
        read: list[tuple[TP, int]] = []
        messages = [message(o) for o in (5, 6, 7, 9)]  # a jump goes on as it is
        await asyncio.wait_for(conductor.deliver_run(
            PARTITION, messages, lambda tp, o: read.append((tp, o))), 5)
        queue = channel.queue
        events = [queue.get_nowait() for _ in range(queue.qsize())]
        assert [e.message.offset for e in events] == [5, 6, 7, 9]
        assert [e.value for e in events] == [m.value for m in messages]
        assert [m.refcount for m in messages] == [2, 2, 2, 2]  # one reference each, as before
        assert read == [(PARTITION, o) for o in (5, 6, 7, 9)]

    asyncio.run(run())


def test_deliver_run_without_a_handler_goes_message_by_message() -> None:
    async def run() -> None:
        app = _app()
        conductor = app.topics
        seen: list[int] = []

        async def on_message(m: Any) -> None:
            seen.append(m.offset)

        conductor.on_message = on_message  # the stock path (no lean handler for the tp)
        read: list[int] = []
        await asyncio.wait_for(conductor.deliver_run(
            PARTITION, [message(1), message(2)], lambda tp, o: read.append(o)), 5)
        assert seen == read == [1, 2]

    asyncio.run(run())
