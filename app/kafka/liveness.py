"""Whether this worker can reach Kafka right now, for ``/ready`` and ``orderstats_kafka_up``.

Faust's consumer and producer retry a lost broker by themselves, quietly: without this a
worker cut off from Kafka still answers ``/ready`` with 200 and serves figures that silently
stop moving. A probe (one authenticated connection to a bootstrap host, as the commands use
to explain a failure) every few seconds says so instead; the worker itself recovers on its
own once the broker is back, and the probe then reports it up again.
"""

from __future__ import annotations

import asyncio
import logging
import time

from app import metrics
from app.kafka.clients import Connection
from app.security import explain, probe

log = logging.getLogger(__name__)

INTERVAL_S = 2.0
TIMEOUT_S = 3.0


class KafkaLiveness:
    """The last probe's verdict: ``up``, and when down, ``reason`` (one line, no secret)."""

    def __init__(self, conn: Connection, interval_s: float = INTERVAL_S,
                 timeout_s: float = TIMEOUT_S) -> None:
        self.conn = conn
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.up = True  # the worker started, so the broker was reachable a moment ago
        self.reason = ""
        self.down_since: float | None = None
        metrics.KAFKA_UP.set(1)

    async def check(self) -> bool:
        """Probe once and record the verdict; logs each change of state once."""
        try:
            await probe(self.conn.broker, self.conn.security, self.timeout_s)
        except Exception as exc:  # any failure to connect is "down", with its cause
            self._down(explain(exc, self.conn.broker, self.conn.security) or
                       f"cannot reach Kafka at {self.conn.bootstrap}: {type(exc).__name__}")
        else:
            self._up()
        return self.up

    def _down(self, reason: str) -> None:
        if self.up:
            self.down_since = time.monotonic()
            log.warning("Kafka unreachable; not ready until it is back: %s", reason)
        self.up, self.reason = False, reason
        metrics.KAFKA_UP.set(0)

    def _up(self) -> None:
        if not self.up and self.down_since is not None:
            log.warning("Kafka reachable again after %.1f s",
                        time.monotonic() - self.down_since)
        self.up, self.reason, self.down_since = True, "", None
        metrics.KAFKA_UP.set(1)

    async def run(self) -> None:
        """Probe forever (a task of the worker; cancelled at shutdown)."""
        while True:
            await self.check()
            await asyncio.sleep(self.interval_s)
