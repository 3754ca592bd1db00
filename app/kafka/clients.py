"""Every aiokafka client the project opens, made in one place from one :class:`Connection`.

So the broker address (and, with it, any security setting) applies alike to workers'
helpers, the generator, replay and topic admin, and an unreachable broker is reported the
same way by every command.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from app.security import Security, aiokafka_kwargs, explain, probe
from app.settings import Settings


def bootstrap_servers(broker_url: str) -> str:
    """``kafka://h1:9092;kafka://h2:9092`` (Faust style) -> ``h1:9092,h2:9092``."""
    hosts = [part.split("://", 1)[-1].strip("/") for part in broker_url.replace(";", ",")
             .split(",") if part.strip()]
    return ",".join(hosts)


@dataclass(frozen=True)
class Connection:
    """Where the brokers are and how to talk to them (TLS, SASL)."""

    broker: str
    security: Security = field(default_factory=Security)
    replication: int = 1  # of the topics created through this connection (app.kafka.topics)

    @classmethod
    def of(cls, settings: Settings) -> "Connection":
        return cls(settings.broker, settings.security, settings.replication_factor)

    @property
    def bootstrap(self) -> str:
        return bootstrap_servers(self.broker)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client of this connection takes."""
        return {"bootstrap_servers": self.bootstrap, **aiokafka_kwargs(self.security)}


def unreachable(conn: Connection, exc: BaseException) -> str:
    """The one line a command prints when the broker at ``conn`` cannot be used.

    aiokafka raises a bare "Unable to bootstrap" whatever the cause; one more, bounded
    connection attempt (:func:`app.security.probe`) finds the cause: refused, wrong
    password, untrusted certificate. Never contains the password.
    """
    cause: BaseException = exc
    if isinstance(exc, KafkaConnectionError):
        try:  # in a thread of its own: callers may be inside a running loop
            with ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, probe(conn.broker, conn.security, 5.0)).result()
        except Exception as found:
            cause = found
    line = explain(cause, conn.broker, conn.security)
    if line is None:
        line = (f"cannot reach Kafka at {conn.bootstrap} (ORDERSTATS_BROKER): "
                f"{cause or type(cause).__name__}")
    return "error: " + line


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
