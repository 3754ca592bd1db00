"""Helpers for tests that run real worker processes against the session's Kafka broker."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
ORDERSTATS = str(Path(sys.executable).parent / "orderstats")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def http_json(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"null")


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, ValueError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class Deployment:
    """One isolated orderstats deployment: its own topics, consumer group and data dirs."""

    broker: str
    tmp: Path
    partitions: int = 8
    name: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}")
    workers: list["Worker"] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "ORDERSTATS_BROKER": self.broker,
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

    def worker(self, index: int = 1, host: str = "127.0.0.1", **env: str) -> "Worker":
        port = free_port(host)
        data_dir = self.tmp / f"{self.name}-w{index}"
        w = Worker(self, index, host, port, data_dir, {k.upper(): v for k, v in env.items()})
        w.start()
        self.workers.append(w)
        return w

    def cleanup(self) -> None:
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
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


@dataclass
class Worker:
    deployment: Deployment
    index: int
    host: str
    port: int
    data_dir: Path
    extra_env: dict[str, str]
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.with_suffix(".log")

    def start(self) -> None:
        env = {**self.deployment.env, "ORDERSTATS_WEB_BIND": self.host,
               "ORDERSTATS_WEB_PORT": str(self.port), "ORDERSTATS_DATA_DIR": str(self.data_dir),
               **self.extra_env}
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([ORDERSTATS, "worker", "-l", "info"], env=env,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 90) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.index} exited with {self.proc.returncode}:"
                                     f"\n{self.log_tail()}")
            try:
                return http_json(self.url + "/ready", timeout=2)[0] == 200
            except OSError:
                return False
        wait_for(ready, timeout, what=f"worker {self.index} ready")

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as resp:
            total = 0.0
            for line in resp.read().decode().splitlines():
                if line.startswith(name):
                    total += float(line.rsplit(" ", 1)[1])
            return total

    def processed(self) -> int:
        return int(self.metric("orderstats_batch_events_sum"))

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as systemd or Kubernetes would; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def assert_matches_truth(url: str, truth: dict, timeout: float = 120) -> None:
    """Poll the API until it equals the ground truth exactly; fail with the differences."""
    from app.verify import compare

    deadline = time.monotonic() + timeout
    problems: list[str] = []
    while time.monotonic() < deadline:
        problems = asyncio.run(compare(url, truth))
        if not problems:
            return
        time.sleep(1)
    raise AssertionError(f"{len(problems)} differences, first: {problems[:10]}")
