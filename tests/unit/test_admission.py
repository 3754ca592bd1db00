"""Admitting a partition's offsets in order: holes are verified with the broker or re-read."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from agents.admission import Cursor
from agents.batch import Topics
from agents.orders import OrderBatchProcessor
from agents.partition import PartitionState
from app.settings import Settings
from tables.dedup import DedupIndex
from tables.values import ORDERS, REPARTITION

TOPIC = "orders"


class FakeProbe:
    """The broker's view: which offsets hold records, and the group's committed offset."""

    def __init__(self, offsets: list[int], committed: int | None = None) -> None:
        self.offsets = sorted(offsets)
        self.committed_offset = committed
        self.asked: list[int] = []

    async def committed(self, partition: int) -> int | None:
        return self.committed_offset

    async def first_offset(self, partition: int, from_offset: int) -> int | None:
        self.asked.append(from_offset)
        return next((o for o in self.offsets if o >= from_offset), None)

    async def log_start(self, partition: int) -> int | None:
        return self.log_start_offset

    log_start_offset = 0


class NoStore:
    def get_many(self, keys: list[bytes]) -> list[None]:
        return [None] * len(keys)

    def apply(self, puts: Any, deletes: Any) -> None:
        pass


def processor(probe: FakeProbe, last_offset: int = 9) -> tuple[OrderBatchProcessor, list]:
    seeks: list[dict] = []

    async def seek(offsets: dict) -> None:
        seeks.append({tp.partition: o for tp, o in offsets.items()})

    settings = Settings.from_env({"ORDERSTATS_ORDERS_TOPIC": TOPIC})
    proc = OrderBatchProcessor(None, settings, Topics("repartition", "dlq"),  # type: ignore
                               send=None, probes={ORDERS: probe, REPARTITION: probe},
                               seek=seek)  # type: ignore[arg-type]
    proc.partitions[0] = PartitionState([last_offset, -1], 0, 0, DedupIndex(1000, NoStore()),
                                        {ORDERS: Cursor(last_offset + 1),
                                         REPARTITION: Cursor(0)})
    return proc, seeks


def events(*offsets: int) -> list[Any]:
    return [SimpleNamespace(message=SimpleNamespace(offset=o, partition=0)) for o in offsets]


def admit(proc: OrderBatchProcessor, *offsets: int) -> list[int]:
    admitted = asyncio.run(proc.admit(0, events(*offsets)))
    return [e.message.offset for e in admitted]


def test_contiguous_offsets_and_replays_are_admitted_without_asking_the_broker():
    probe = FakeProbe(list(range(100)))
    proc, seeks = processor(probe)
    assert admit(proc, 5, 6, 10, 11, 12) == [5, 6, 10, 11, 12]
    assert proc.partitions[0].cursors[ORDERS].next_offset == 13
    assert probe.asked == [] and seeks == []


def test_a_hole_holding_no_records_is_accepted():
    probe = FakeProbe([*range(13), *range(20, 30)])  # 13..19: transaction markers, say
    proc, seeks = processor(probe)
    assert admit(proc, 10, 11, 12, 20, 21) == [10, 11, 12, 20, 21]
    assert probe.asked == [13] and seeks == []
    assert proc.partitions[0].cursors[ORDERS].next_offset == 22


def test_records_lost_on_the_way_are_re_read_and_nothing_past_the_hole_is_applied():
    probe = FakeProbe(list(range(100)))
    proc, seeks = processor(probe)
    # 12..14 were fetched but never delivered: 15.. must wait for the re-read.
    assert admit(proc, 10, 11, 15, 16) == [10, 11]
    assert seeks == [{0: 12}]
    # Still-queued events from before the re-read are dropped; the re-read is admitted.
    assert admit(proc, 17, 18, 12, 13, 14, 15) == [12, 13, 14, 15]
    assert proc.partitions[0].cursors[ORDERS].next_offset == 16
    assert seeks == [{0: 12}]  # one seek, however many stale events followed


def test_a_re_read_that_starts_after_a_hole_is_admitted_at_the_first_record():
    probe = FakeProbe([*range(12), *range(14, 100)])  # 12, 13 hold no record
    proc, seeks = processor(probe)
    assert admit(proc, 10, 11, 16) == [10, 11]  # 14, 15 exist: lost on the way
    assert seeks == [{0: 12}]
    assert admit(proc, 14, 15, 16) == [14, 15, 16]


def test_a_group_repositioned_by_replay_is_followed():
    probe = FakeProbe(list(range(100)), committed=50)
    proc, seeks = processor(probe)
    assert admit(proc, 50, 51) == [50, 51]
    assert probe.asked == [50] and seeks == []


def test_commit_offset_covers_only_written_batches():
    proc, _ = processor(FakeProbe(list(range(100))))
    assert proc.commit_offset(TOPIC, 0) is None  # nothing written in this assignment yet
    assert proc.commit_offset(TOPIC, 3) is None  # not ours
    proc.partitions[0].committable[ORDERS] = 42
    assert proc.commit_offset(TOPIC, 0) == 42
    assert proc.commit_offset("repartition", 0) is None


def test_offsets_deleted_before_they_were_counted_are_reported_loudly(caplog):
    from app.metrics import REGISTRY

    def lost() -> float:
        return REGISTRY.get_sample_value("orderstats_lost_offsets_total",
                                         {"topic": TOPIC, "partition": "0"}) or 0

    before = lost()
    probe = FakeProbe(list(range(15, 100)))
    probe.log_start_offset = 15  # retention deleted 0..14; we had counted through 9
    proc, seeks = processor(probe)
    assert admit(proc, 15, 16) == [15, 16]  # what is left is counted, no re-read
    assert seeks == []
    assert lost() - before == 5  # offsets 10..14
    assert any(r.levelname == "ERROR" and "deleted by the topic's retention" in r.getMessage()
               for r in caplog.records)


def test_a_hole_of_transaction_markers_is_not_called_a_loss():
    probe = FakeProbe([*range(13), *range(20, 30)])  # 13..19 markers; log starts at 0
    proc, _ = processor(probe)
    assert admit(proc, 10, 11, 12, 20) == [10, 11, 12, 20]
