"""The control topic ``APP_ID-control``: which state epoch is current, which one is being
built beside it, and which worker serves which epoch.

One partition, compacted; each key holds the latest fact about one thing:

* ``epoch`` -> ``N``: epoch N is current (the one every answer should come from).
* ``shadow`` -> ``{"epoch": M, "state": "pending"|"cancelled", ...}``: a rebuild into epoch
  M started by ``orderstats replay --rebuild --shadow``. It is *pending* while M is above the
  current epoch; writing ``epoch`` -> M is the switch, so making M current and ending the
  shadow is one record.
* ``worker:<url>`` -> ``N``: the worker whose web server is at ``url`` runs epoch N (a
  tombstone when it stops cleanly). Old workers find new ones here to forward to.

``ControlState.apply`` is the pure fold of those records; the rest reads and writes them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiokafka import TopicPartition

from app.kafka.clients import Connection, consumer, make_consumer, producer
from app.kafka.topics import ensure_topic

EPOCH_KEY = b"epoch"
SHADOW_KEY = b"shadow"
WORKER_PREFIX = b"worker:"


def control_topic(app_id: str) -> str:
    return f"{app_id}-control"


@dataclass(frozen=True)
class ControlState:
    """What the control topic says now."""

    epoch: int = 1
    shadow: int = 0  # the last shadow epoch ever started (0: none)
    shadow_state: str = ""  # pending | cancelled
    shadow_info: dict[str, Any] = field(default_factory=dict)
    workers: dict[str, int] = field(default_factory=dict)  # web URL -> epoch it runs

    @property
    def pending(self) -> int | None:
        """The epoch being built beside the current one, if any."""
        if self.shadow > self.epoch and self.shadow_state == "pending":
            return self.shadow
        return None

    @property
    def next_epoch(self) -> int:
        """A number never used before: a cancelled shadow's local state and topics can
        never be mistaken for a new attempt's."""
        return max(self.epoch, self.shadow) + 1

    def workers_of(self, epoch: int) -> list[str]:
        return sorted(url for url, e in self.workers.items() if e == epoch)

    def apply(self, key: bytes | None, value: bytes | None) -> "ControlState":
        """This state with one more control record folded in (unknown keys are ignored)."""
        if key == EPOCH_KEY and value:
            return replace(self, epoch=int(value))
        if key == SHADOW_KEY and value:
            info = orjson.loads(value)
            return replace(self, shadow=int(info["epoch"]), shadow_state=str(info["state"]),
                           shadow_info=info)
        if key is not None and key.startswith(WORKER_PREFIX):
            url = key[len(WORKER_PREFIX):].decode()
            workers = {u: e for u, e in self.workers.items() if u != url}
            if value:
                workers[url] = int(value)
            return replace(self, workers=workers)
        return self


def shadow_record(epoch: int, state: str, **info: Any) -> tuple[bytes, bytes]:
    return SHADOW_KEY, orjson.dumps({"epoch": epoch, "state": state, **info})


def epoch_record(epoch: int) -> tuple[bytes, bytes]:
    return EPOCH_KEY, str(epoch).encode()


def worker_record(url: str, epoch: int | None) -> tuple[bytes, bytes | None]:
    """``url`` runs ``epoch``; ``None``: it stopped (a tombstone)."""
    return WORKER_PREFIX + url.encode(), None if epoch is None else str(epoch).encode()


async def read_control(conn: Connection, app_id: str) -> ControlState:
    """The control topic folded from its start (epoch 1, nothing else, if it does not exist)."""
    state = ControlState()
    async with consumer(conn) as client:
        topic = control_topic(app_id)
        if topic not in await client.topics():  # a fresh metadata fetch
            return state
        tp = TopicPartition(topic, 0)
        client.assign([tp])
        await client.seek_to_beginning(tp)
        end = (await client.end_offsets([tp]))[tp]
        while await client.position(tp) < end:
            for records in (await client.getmany(tp, timeout_ms=1000)).values():
                for record in records:
                    state = state.apply(record.key, record.value)
        return state


async def write_control(conn: Connection, app_id: str,
                        *records: tuple[bytes, bytes | None]) -> None:
    """Append records to the control topic (made first if missing), durably acknowledged."""
    await ensure_topic(conn, control_topic(app_id), 1, {"cleanup.policy": "compact"})
    async with producer(conn) as client:
        for key, value in records:
            await client.send_and_wait(control_topic(app_id), key=key, value=value)


class ControlTail:
    """A long-lived reader of the control topic: ``poll()`` folds in what arrived since."""

    def __init__(self, conn: Connection, app_id: str) -> None:
        self.conn = conn
        self.topic = control_topic(app_id)
        self.state = ControlState()
        self._client: Any = None
        self.caught_up = False  # the whole history folded in once (state is current)

    async def poll(self, timeout_ms: int = 0) -> ControlState:
        if self._client is None:
            await ensure_topic(self.conn, self.topic, 1, {"cleanup.policy": "compact"})
            client = make_consumer(self.conn)
            await client.start()
            tp = TopicPartition(self.topic, 0)
            client.assign([tp])
            await client.seek_to_beginning(tp)
            self._client = client
            end = (await client.end_offsets([tp]))[tp]
            while await client.position(tp) < end:  # the whole history before answering
                await self._fold(1000)
            self.caught_up = True
            return self.state
        await self._fold(timeout_ms)
        return self.state

    async def _fold(self, timeout_ms: int) -> None:
        for records in (await self._client.getmany(timeout_ms=timeout_ms)).values():
            for record in records:
                self.state = self.state.apply(record.key, record.value)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await asyncio.wait_for(client.stop(), 5)
            except Exception:  # shutting down anyway
                pass
