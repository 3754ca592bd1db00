"""The state epoch: which generation of derived state (changelogs, local RocksDB) is current.

``orderstats replay --rebuild`` starts a new epoch instead of deleting state under running
feet: epoch N runs as Faust app version N, i.e. consumer group and changelog topics
``APP_ID-vN`` and local tables under ``DATA_DIR/APP_ID/vN``. Stale local state of an older
epoch can therefore never be mixed with new changelogs on any host. The current epoch is
one record in the compacted topic ``APP_ID-control`` (app/kafka/control.py, which also
holds the rebuild being built beside it, ``--shadow``); workers read it at start-up.
"""

from __future__ import annotations

from app.kafka.clients import Connection
from app.kafka.control import EPOCH_KEY, control_topic, epoch_record, read_control, write_control
from tables.schema import TABLE_NAMES, changelog_topic, repartition_topic

__all__ = ["EPOCH_KEY", "control_topic", "epoch_topics", "group_id", "read_epoch",
           "write_epoch"]


def group_id(app_id: str, epoch: int) -> str:
    """Faust's app id for version ``epoch`` (its consumer group and changelog prefix)."""
    return app_id if epoch <= 1 else f"{app_id}-v{epoch}"


def epoch_topics(app_id: str, epoch: int) -> list[str]:
    """The topics that belong to one epoch only: its changelogs, its repartition topic and
    Faust's assignor topic (deleted once the epoch is over)."""
    group = group_id(app_id, epoch)
    return ([changelog_topic(group, table) for table in TABLE_NAMES]
            + [repartition_topic(group), f"{group}-__assignor-__leader"])


async def read_epoch(conn: Connection, app_id: str) -> int:
    """The current epoch (1 when no rebuild ever happened)."""
    return (await read_control(conn, app_id)).epoch


async def write_epoch(conn: Connection, app_id: str, epoch: int) -> None:
    await write_control(conn, app_id, epoch_record(epoch))
