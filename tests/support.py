"""Helpers for tests that run real worker processes against the session's Kafka broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from tests.worker_process import ORDERSTATS, WorkerProcess, free_port, http_json
from tests.worker_process import wait_for as bench_wait_for

__all__ = ["ORDERSTATS", "Deployment", "WorkerProcess", "assert_matches_truth", "free_port", "http_json",
           "wait_for"]

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    try:
        return bench_wait_for(predicate, timeout, interval, what)
    except TimeoutError as exc:
        raise AssertionError(str(exc)) from None


@dataclass
class Deployment:
    """One isolated orderstats deployment: its own topics, consumer group and data dirs."""

    broker: str
    tmp: Path
    partitions: int = 8
    name: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}")
    workers: list[WorkerProcess] = field(default_factory=list)
    # More settings for every command and worker of this deployment (e.g. TLS and SASL);
    # the deployment's own broker, app id and topics still win.
    extra_env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.extra_env, "ORDERSTATS_BROKER": self.broker,
                "ORDERSTATS_APP_ID": f"orderstats-{self.name}",
                "ORDERSTATS_ORDERS_TOPIC": f"orders-{self.name}",
                "ORDERSTATS_DLQ_TOPIC": f"orders-dlq-{self.name}",
                "ORDERSTATS_PARTITIONS": str(self.partitions)}

    @property
    def group(self) -> str:
        return f"orderstats-{self.name}"

    @property
    def topic(self) -> str:
        return f"orders-{self.name}"

    def worker(self, index: int = 1, host: str = "127.0.0.1", **env: str) -> WorkerProcess:
        w = WorkerProcess({**self.env, **{k.upper(): v for k, v in env.items()}},
                          self.tmp / f"{self.name}-w{index}", host=host, index=index).start()
        self.workers.append(w)
        return w

    def cleanup(self) -> None:
        for w in self.workers:
            if w.alive():
                w.kill()

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run an ``orderstats`` command in this deployment; fails the test on error."""
        proc = subprocess.run([ORDERSTATS, *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        assert proc.returncode == 0, f"orderstats {' '.join(args)} failed:\n{proc.stderr}"
        return proc

    def generate(self, truth: Path, *args: str) -> dict:
        self.run("generate", "--truth", str(truth), *args)
        return orjson.loads(truth.read_bytes())


def assert_matches_truth(url: str, truth: dict, timeout: float = 120) -> None:
    """Poll the API until it equals the ground truth exactly; fail with the differences."""
    from app.cli.verify import compare

    deadline = time.monotonic() + timeout
    problems: list[str] = []
    while time.monotonic() < deadline:
        problems = asyncio.run(compare(url, truth))
        if not problems:
            return
        time.sleep(1)
    raise AssertionError(f"{len(problems)} differences, first: {problems[:10]}")
