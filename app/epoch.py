"""The state epoch: which generation of derived state (changelogs, local RocksDB) is current.

``orderstats replay --rebuild`` starts a new epoch instead of deleting state under running
feet: epoch N runs as Faust app version N, i.e. consumer group and changelog topics
``APP_ID-vN`` and local tables under ``DATA_DIR/APP_ID/vN``. Stale local state of an older
epoch can therefore never be mixed with new changelogs on any host. The current epoch is
one record in the compacted topic ``APP_ID-control``; workers read it at start-up.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from app.producing import bootstrap_servers

EPOCH_KEY = b"epoch"


def control_topic(app_id: str) -> str:
    return f"{app_id}-control"


def group_id(app_id: str, epoch: int) -> str:
    """Faust's app id for version ``epoch`` (its consumer group and changelog prefix)."""
    return app_id if epoch <= 1 else f"{app_id}-v{epoch}"


async def read_epoch(broker_url: str, app_id: str) -> int:
    """The current epoch (1 when no rebuild ever happened)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url),
                                enable_auto_commit=False)
    await consumer.start()
    try:
        topic = control_topic(app_id)
        await consumer._client.force_metadata_update()
        if not consumer.partitions_for_topic(topic):
            return 1
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        epoch = 1
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                for record in records:
                    if record.key == EPOCH_KEY and record.value:
                        epoch = int(record.value)
        return epoch
    finally:
        await consumer.stop()


async def write_epoch(broker_url: str, app_id: str, epoch: int) -> None:
    servers = bootstrap_servers(broker_url)
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(control_topic(app_id), 1, 1,
                                            topic_configs={"cleanup.policy": "compact"})])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(control_topic(app_id), key=EPOCH_KEY,
                                     value=str(epoch).encode())
    finally:
        await producer.stop()
