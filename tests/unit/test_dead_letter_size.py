"""A dead letter the topic refuses as too large is sent cut, never stopping the worker."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from agents.batch import TRUNCATED_VALUE_BYTES, BatchUnit, Topics


def unit_with(send) -> BatchUnit:
    unit = BatchUnit.__new__(BatchUnit)  # only the sending half is under test
    unit.send, unit.topics = send, Topics("rep", "dlq")
    return unit


def recording_send(sent: list, first_offset: int):
    """A producer's send that records (partition, source offset) and is acked at once, the
    letters getting dead-letter offsets first_offset + 1, + 2, ..."""
    async def send(topic, key, value, partition, ts, headers):
        sent.append((partition, dict(headers)["orderstats.source.offset"]))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(SimpleNamespace(offset=first_offset + len(sent)))
        return fut
    return send


def message(value: bytes) -> SimpleNamespace:
    return SimpleNamespace(key=b"k", value=value, headers=[("x-own", b"1")], topic="orders",
                           partition=3, offset=41)


def test_a_refused_size_is_resent_cut_with_the_original_size():
    sent = []

    async def send(topic, key, value, partition, ts, headers):
        sent.append((topic, value, dict(headers)))
        if len(value) > TRUNCATED_VALUE_BYTES:
            try:  # as faust reports it: its own error, caused by the client's
                raise MessageSizeTooLargeError("too big")
            except MessageSizeTooLargeError as exc:
                raise RuntimeError("Error while sending") from exc
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    value = b"x" * (TRUNCATED_VALUE_BYTES * 3)
    asyncio.run(unit_with(send)._dead_letter(message(value), "event is too big", None))
    (_t, first, _h), (topic, cut, headers) = sent
    assert first == value and topic == "dlq" and cut == value[:TRUNCATED_VALUE_BYTES]
    assert headers["orderstats.truncated"] == str(len(value)).encode()
    assert headers["x-own"] == b"1" and headers["orderstats.reason"] == b"event is too big"


def test_other_send_errors_still_stop_the_batch():
    async def send(*_record):
        raise KafkaTimeoutError()

    with pytest.raises(KafkaTimeoutError):
        asyncio.run(unit_with(send)._dead_letter(message(b"{}"), "bad", 0))


def test_letters_sent_before_a_kill_are_not_sent_again_and_the_offset_advances():
    """Records past the progress whose dead letter is already in the topic are skipped; the
    others go to the source partition's dead-letter partition, and the progress learns the
    offset after the last one."""
    sent = []
    unit = unit_with(recording_send(sent, 100))
    unit.topics = Topics("rep", "dlq", dlq_partitions=4)
    state = SimpleNamespace(lettered={("orders", 41)}, dlq_next=90)
    invalid = [(SimpleNamespace(message=message(b"x")), "bad")]
    other = message(b"y")
    other.offset = 42
    invalid.append((SimpleNamespace(message=other), "bad"))
    plan = SimpleNamespace(partition=6, state=state, forward=[], invalid=invalid)
    asyncio.run(unit._send_on(plan))
    assert sent == [(2, b"42")]  # 41 was sent before; partition 6 % 4
    assert state.dlq_next == 102


def test_a_record_delivered_twice_in_one_batch_is_dead_lettered_once():
    """A consumer can deliver a record again in the same batch (a seek, a rebalance): the
    fences make a valid one a replay, and an invalid one must not get a second letter."""
    from agents.routing import KeyRouting

    unit = BatchUnit(SimpleNamespace(), None, Topics("rep", "dlq"), None, KeyRouting("raw", 8))
    state = SimpleNamespace(last_offsets=[10, -1])

    def event(offset: int) -> SimpleNamespace:
        msg = message(b"not json")
        msg.offset, msg.partition = offset, 0
        return SimpleNamespace(message=msg)

    batch = [event(o) for o in (9, 11, 12, 11, 12, 13)]  # 9: before the progress
    _decoded, _forward, invalid = unit._decode(0, state, {0: batch}, 2**62)
    assert [e.message.offset for e, _reason in invalid] == [11, 12, 13]


def test_a_shadow_epoch_holds_its_dead_letters_back():
    sent = []

    async def send(*record):
        sent.append(record)

    unit = unit_with(send)
    unit.serving = lambda: False
    state = SimpleNamespace(lettered=set(), dlq_next=0, letters_deferred=False)
    plan = SimpleNamespace(partition=0, state=state, forward=[],
                           invalid=[(SimpleNamespace(message=message(b"x")), "bad")])
    asyncio.run(unit._send_on(plan))
    assert sent == [] and state.letters_deferred


def test_the_hand_over_letters_only_what_the_previous_epoch_did_not():
    """From the previous group's committed offset to this epoch's progress: each invalid
    record without a letter in the dead-letter partition gets one; valid ones and those
    the old epoch lettered do not."""
    from agents.orders import OrderBatchProcessor
    from agents.routing import KeyRouting

    sent = []
    send = recording_send(sent, 50)

    def record(offset: int, value: bytes) -> SimpleNamespace:
        return SimpleNamespace(topic="orders", partition=2, offset=offset, key=b"k",
                               value=value, headers=(), timestamp_ms=0)

    valid = (b'{"order_id":"o","store_id":"s","created_at":"2026-11-23T10:00:00Z",'
             b'"items":[{"sku":"a","qty":1,"unit_price":5}],"total":5}')
    asked = {}

    class Letters:
        async def committed(self, group, topic, partition):
            asked["committed"] = (group, topic, partition)
            return 10

        async def since(self, dlq_partition, from_offset, source_partition):
            asked["since"] = (dlq_partition, from_offset, source_partition)
            return {("orders", 11)}, 40

        async def records(self, topic, partition, start, end):
            asked["records"] = (topic, partition, start, end)
            return [record(10, valid), record(11, b"nope"), record(12, b"[]"),
                    record(13, valid)]

    processor = OrderBatchProcessor.__new__(OrderBatchProcessor)
    processor.letters = Letters()
    processor.settings = SimpleNamespace(orders_topic="orders")
    processor.previous_group = lambda: "app"
    processor.unit = BatchUnit(SimpleNamespace(), send, Topics("rep", "dlq", dlq_partitions=4),
                               None, KeyRouting("raw", 8))
    state = SimpleNamespace(letters_deferred=True, dlq_next=30, last_offsets=[13, -1])
    asyncio.run(processor.hand_over(2, state))
    assert asked == {"committed": ("app", "orders", 2), "since": (2, 30, 2),
                     "records": ("orders", 2, 10, 14)}
    assert sent == [(2, b"12")]  # 11 was lettered by the old epoch; 10 and 13 are valid
    assert state.dlq_next == 52 and not state.letters_deferred
