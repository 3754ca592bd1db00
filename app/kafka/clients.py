"""Every aiokafka client the project opens, made in one place from one :class:`Connection`.

So the broker address (and, with it, any security setting) applies alike to workers'
helpers, the generator, replay and topic admin, and an unreachable broker is reported the
same way by every command.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient


def bootstrap_servers(broker_url: str) -> str:
    """``kafka://h1:9092;kafka://h2:9092`` (Faust style) -> ``h1:9092,h2:9092``."""
    hosts = [part.split("://", 1)[-1].strip("/") for part in broker_url.replace(";", ",")
             .split(",") if part.strip()]
    return ",".join(hosts)


@dataclass(frozen=True)
class Connection:
    """Where the brokers are and how to talk to them."""

    broker: str

    @property
    def bootstrap(self) -> str:
        return bootstrap_servers(self.broker)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client of this connection takes."""
        return {"bootstrap_servers": self.bootstrap}


def unreachable(conn: Connection, exc: BaseException) -> str:
    """The one line a command prints when the broker at ``conn`` cannot be used."""
    return (f"error: cannot reach Kafka at {conn.bootstrap} (ORDERSTATS_BROKER): "
            f"{exc or type(exc).__name__}")


@asynccontextmanager
async def admin(conn: Connection) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on exit (the one admin context used everywhere)."""
    client = AIOKafkaAdminClient(**conn.kwargs())
    try:
        await client.start()
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def consumer(conn: Connection, **options: Any) -> AsyncIterator[AIOKafkaConsumer]:
    """A started group-less (unless ``group_id`` is given) consumer, stopped on exit."""
    client = make_consumer(conn, **options)
    try:
        await client.start()
        yield client
    finally:
        await client.stop()


def make_consumer(conn: Connection, **options: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(**conn.kwargs(), **{"enable_auto_commit": False, **options})


@asynccontextmanager
async def producer(conn: Connection, **options: Any) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer with durable acks, flushed and stopped on exit."""
    client = AIOKafkaProducer(**conn.kwargs(), **{"acks": "all", **options})
    try:
        await client.start()
        yield client
    finally:
        await client.stop()
