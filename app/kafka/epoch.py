"""The state epoch: which generation of derived state (changelogs, local RocksDB) is current.

``orderstats replay --rebuild`` starts a new epoch instead of deleting state under running
feet: epoch N runs as Faust app version N, i.e. consumer group and changelog topics
``APP_ID-vN`` and local tables under ``DATA_DIR/APP_ID/vN``. Stale local state of an older
epoch can therefore never be mixed with new changelogs on any host. The current epoch is
one record in the compacted topic ``APP_ID-control``; workers read it at start-up.
"""

from __future__ import annotations

from aiokafka import TopicPartition

from app.kafka.clients import Connection, consumer, producer
from app.kafka.topics import ensure_topic

EPOCH_KEY = b"epoch"


def control_topic(app_id: str) -> str:
    return f"{app_id}-control"


def group_id(app_id: str, epoch: int) -> str:
    """Faust's app id for version ``epoch`` (its consumer group and changelog prefix)."""
    return app_id if epoch <= 1 else f"{app_id}-v{epoch}"


async def read_epoch(conn: Connection, app_id: str) -> int:
    """The current epoch (1 when no rebuild ever happened)."""
    async with consumer(conn) as client:
        topic = control_topic(app_id)
        if topic not in await client.topics():  # a fresh metadata fetch
            return 1
        tp = TopicPartition(topic, 0)
        client.assign([tp])
        await client.seek_to_beginning(tp)
        end = (await client.end_offsets([tp]))[tp]
        epoch = 1
        while await client.position(tp) < end:
            for records in (await client.getmany(tp, timeout_ms=1000)).values():
                for record in records:
                    if record.key == EPOCH_KEY and record.value:
                        epoch = int(record.value)
        return epoch


async def write_epoch(conn: Connection, app_id: str, epoch: int) -> None:
    await ensure_topic(conn, control_topic(app_id), 1, {"cleanup.policy": "compact"})
    async with producer(conn) as client:
        await client.send_and_wait(control_topic(app_id), key=EPOCH_KEY,
                                   value=str(epoch).encode())
