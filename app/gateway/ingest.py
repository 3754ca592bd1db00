"""Validation and produce: what the gateway accepts is what the workers count.

Each order is decoded by the workers' own :func:`app.order.decode_order` with the same event
mapping and the same 7-days-ahead limit, then produced with the store's key in
``ORDERSTATS_KEY_FORMAT`` to the partition the workers hold the store in
(:class:`agents.routing.KeyRouting`), so it takes the direct path. The producer is
idempotent with acks=all; an order counts as accepted only once its future resolved
without error within ``ORDERSTATS_GATEWAY_PRODUCE_TIMEOUT_S``.

:class:`OrderSink` keeps one producer for the process and knows whether the broker is
reachable: it connects in the background (the gateway serves 503 meanwhile), probes the
cluster's metadata every second or two, and stops taking orders (503, ``Retry-After``) as
soon as a produce times out or the probe fails, until a probe succeeds again. aiokafka's
producer reconnects by itself; an idempotent producer never expires a batch, so a record
queued before an outage is still delivered after it (its request was answered 503; a client
retry is a duplicate order id, which the workers count once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from agents.routing import KeyRouting
from app.kafka.clients import Connection
from app.kafka.topics import ensure_topic
from app.order import InvalidOrder, Order, decode_order
from app.settings import Settings

log = logging.getLogger(__name__)

MAX_FUTURE_MS = 7 * 86400 * 1000  # as the workers (agents/batch.py)
PROBE_UP_S = 2.0
PROBE_DOWN_S = 1.0
PROBE_TIMEOUT_S = 3.0
STOP_TIMEOUT_S = 10.0


class BatchTooLarge(ValueError):
    """More lines than the limit allows (413)."""


@dataclass(frozen=True)
class Valid:
    line: int
    raw: bytes
    order: Order


@dataclass(frozen=True)
class Invalid:
    line: int
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


def split_ndjson(body: bytes, max_lines: int) -> list[tuple[int, bytes]]:
    """(line number from 1, bytes) of each non-blank line; BatchTooLarge above ``max_lines``."""
    out: list[tuple[int, bytes]] = []
    for number, line in enumerate(body.split(b"\n"), 1):
        line = line.strip()
        if not line:
            continue
        if len(out) == max_lines:
            raise BatchTooLarge(f"more than {max_lines} orders in one batch "
                                "(ORDERSTATS_GATEWAY_BATCH_MAX_LINES); split it")
        out.append((number, line))
    return out


def validate(lines: list[tuple[int, bytes]], settings: Settings,
             now_ms: int) -> tuple[list[Valid], list[Invalid]]:
    """The workers' decoding and checks, line by line. ``now_ms`` is also the record time
    the gateway gives the record (the event time under ORDERSTATS_TIME_FORMAT=record)."""
    valid: list[Valid] = []
    invalid: list[Invalid] = []
    for number, raw in lines:
        try:
            valid.append(Valid(number, raw, decode_order(raw, now_ms + MAX_FUTURE_MS,
                                                         settings.mapping, now_ms)))
        except InvalidOrder as exc:
            invalid.append(Invalid(number, str(exc)))
    return valid, invalid


class Unavailable(Exception):
    """The broker is not (known to be) reachable: answer 503 with Retry-After."""


class OrderSink:
    """The Kafka side of the gateway: one idempotent producer, the topic's partitions."""

    def __init__(self, settings: Settings, conn: Connection | None = None) -> None:
        self.settings = settings
        self.conn = conn or Connection.of(settings)
        self.topic = settings.orders_topic
        self.timeout_s = settings.gateway_produce_timeout_s
        self.routing: KeyRouting | None = None
        self.client: AIOKafkaProducer | None = None
        self.up = False
        self.last_problem = "not connected to Kafka yet"
        self.produce_errors = 0  # read by the metrics
        self._broken = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def ready(self) -> bool:
        return self.up and self.client is not None and self.routing is not None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def close(self, timeout_s: float = 10.0) -> None:
        """Stop the producer (it flushes what is queued, for at most ``timeout_s``)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await asyncio.wait_for(self._task, timeout_s)
            except (asyncio.CancelledError, asyncio.TimeoutError, Exception):
                pass

    async def _run(self) -> None:
        """Connect, watch, reconnect: forever, until cancelled."""
        warned = False
        while True:
            # As app.kafka.clients.producer (the connection's TLS/SASL, acks=all), but
            # started and stopped here: a stop with the broker away must not hang forever.
            client = AIOKafkaProducer(**self.conn.kwargs(), acks="all", enable_idempotence=True,
                                      linger_ms=1, request_timeout_ms=30_000)
            try:
                await client.start()
                partitions = await ensure_topic(self.conn, self.topic, self.settings.partitions)
                self.routing = KeyRouting(self.settings.key_format, partitions)
                self.client = client
                self._broken.clear()
                self._mark(True)
                log.warning("gateway: connected to Kafka at %s, topic %s has %d partitions",
                            self.conn.bootstrap, self.topic, partitions)
                warned = False
                await self._watch(client)
                log.warning("gateway: restarting the Kafka producer after an error")
            except (KafkaError, OSError) as exc:
                self._mark(False, f"cannot reach Kafka at {self.conn.bootstrap} "
                                  f"(ORDERSTATS_BROKER): {exc or type(exc).__name__}")
                if not warned:
                    log.warning("gateway: %s; answering 503 until it is back", self.last_problem)
                    warned = True
            finally:
                self.client = None
                self.up = False
                try:  # flushes what is queued, if the broker lets it
                    await asyncio.wait_for(client.stop(), STOP_TIMEOUT_S)
                except (asyncio.TimeoutError, KafkaError, OSError):
                    pass
            await asyncio.sleep(PROBE_DOWN_S)

    async def _watch(self, client: AIOKafkaProducer) -> None:
        """Probe the cluster until the producer reports an error it cannot recover from."""
        while not self._broken.is_set():
            ok = await self._probe(client)
            if ok != self.up:
                log.warning("gateway: Kafka %s", "reachable again: accepting orders" if ok
                            else f"unreachable: answering 503 ({self.last_problem})")
            self._mark(ok, None if ok else self.last_problem)
            try:
                await asyncio.wait_for(self._broken.wait(),
                                       PROBE_UP_S if self.up else PROBE_DOWN_S)
            except asyncio.TimeoutError:
                pass

    async def _probe(self, client: AIOKafkaProducer) -> bool:
        """The cluster answers a metadata request and names leaders for the topic."""
        try:
            md = await asyncio.wait_for(client.client.fetch_all_metadata(), PROBE_TIMEOUT_S)
        except (asyncio.TimeoutError, KafkaError, OSError) as exc:
            self.last_problem = f"no metadata from {self.conn.bootstrap}: {type(exc).__name__}"
            return False
        partitions = md.partitions_for_topic(self.topic)
        available = md.available_partitions_for_topic(self.topic)
        if not partitions or available is None or len(available) < len(partitions):
            self.last_problem = f"topic {self.topic} has partitions without a leader"
            return False
        return True

    def _mark(self, up: bool, problem: str | None = None) -> None:
        self.up = up
        if problem:
            self.last_problem = problem

    async def send(self, orders: list[Valid], timestamp_ms: int) -> tuple[list[Valid], str | None]:
        """Produce ``orders``; (those the broker acknowledged, the problem if any was not)."""
        client, routing = self.client, self.routing
        if not self.ready or client is None or routing is None:
            raise Unavailable(self.last_problem)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        futures: list[asyncio.Future] = []
        problem: str | None = None
        try:
            for v in orders:
                store = v.order.store_id
                futures.append(await asyncio.wait_for(client.send(
                    self.topic, value=v.raw, key=routing.key(store),
                    partition=routing.partition(store), timestamp_ms=timestamp_ms),
                    max(deadline - loop.time(), 0.001)))
        except asyncio.TimeoutError:
            problem = "timed out queueing orders for Kafka"
        except KafkaError as exc:
            problem = f"Kafka refused the orders: {type(exc).__name__}"
            self._broken.set()
        if futures:  # asyncio.wait, not wait_for: a record already queued is not cancelled
            await asyncio.wait(futures, timeout=max(deadline - loop.time(), 0))
        acked: list[Valid] = []
        for v, fut in zip(orders, futures):
            if not fut.done():
                problem = problem or (f"Kafka did not acknowledge within {self.timeout_s:g}s "
                                      "(ORDERSTATS_GATEWAY_PRODUCE_TIMEOUT_S)")
            elif fut.cancelled() or fut.exception() is not None:
                exc = None if fut.cancelled() else fut.exception()
                problem = problem or f"Kafka refused the orders: {type(exc).__name__}"
                if exc is not None and not getattr(exc, "retriable", False):
                    self._broken.set()
            else:
                acked.append(v)
        if problem:
            self.produce_errors += 1
            self._mark(False, problem)  # fail fast until the probe sees the broker again
            log.warning("gateway: %s; %d of %d orders of a request acknowledged", problem,
                        len(acked), len(orders))
        return acked, problem


def now_ms() -> int:
    return int(time.time() * 1000)


class Quieter(logging.Filter):
    """Lets each aiokafka message template through once per ``every_s``: while the broker is
    away its client logs every reconnect attempt (ten a second); the gateway's own lines
    say when it goes and comes back."""

    def __init__(self, every_s: float = 60.0) -> None:
        super().__init__()
        self.every_s = every_s
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        key = str(record.msg)
        if now - self._last.get(key, -self.every_s) < self.every_s:
            return False
        self._last[key] = now
        return True


def quiet_kafka_logs() -> None:
    quieter = Quieter()
    for name in ("aiokafka", "aiokafka.conn", "aiokafka.producer.sender",
                 "aiokafka.producer.producer"):
        logging.getLogger(name).addFilter(quieter)
