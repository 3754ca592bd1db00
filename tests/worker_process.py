"""An ``orderstats worker`` child process: start, wait until ready, read metrics, stop.

Shared by the benchmark and the test suite, which both drive real worker processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import orjson
import psutil

ORDERSTATS = str(Path(sys.executable).parent / "orderstats")


def read_records(broker: str, topic: str) -> list[Any]:
    """Every record of ``topic`` from its start, with a plain group-less aiokafka consumer
    (fetches large enough for a record near the broker's 1 MiB limit plus headers)."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    from app.kafka.clients import bootstrap_servers

    async def read() -> list[Any]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap_servers(broker),
                                    auto_offset_reset="earliest", enable_auto_commit=False,
                                    max_partition_fetch_bytes=2 * 1024 * 1024)
        await consumer.start()
        records: list[Any] = []
        try:
            while batch := await consumer.getmany(timeout_ms=3000):
                for recs in batch.values():
                    records.extend(recs)
        finally:
            await consumer.stop()
        return records

    return asyncio.run(read())


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, as a service manager would; SIGKILL to its session if it does not exit."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def http_json(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    """(status, decoded body) of a GET; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"null")


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.5,
             what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, ValueError) as exc:
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class WorkerProcess:
    env: Mapping[str, str]
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    index: int = 1
    proc: subprocess.Popen | None = None
    rusage: Any = None
    started_at: float = field(default=0.0)
    binary: str = ORDERSTATS  # another install's ``orderstats`` (the benchmark's baseline)
    args: tuple[str, ...] = ()  # more arguments of ``orderstats worker`` (e.g. --shadow)

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_port(self.host)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.with_suffix(".log")

    def start(self, loglevel: str = "info") -> "WorkerProcess":
        env = {**self.env, "ORDERSTATS_WEB_BIND": self.host,
               "ORDERSTATS_WEB_PORT": str(self.port), "ORDERSTATS_DATA_DIR": str(self.data_dir)}
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([self.binary, "worker", "-l", loglevel, *self.args],
                                         env=env,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.started_at = time.monotonic()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds from start until /ready answered 200."""
        def ready() -> bool:
            if not self.alive():
                raise RuntimeError(f"worker {self.index} exited with {self.proc.returncode}:"
                                   f"\n{self.log_tail()}")
            try:
                return http_json(self.url + "/ready", timeout=2)[0] == 200
            except OSError:
                return False
        wait_for(ready, timeout, interval=0.1, what=f"worker {self.index} ready")
        return time.monotonic() - self.started_at

    def metric(self, name: str) -> float:
        """Sum of the samples of one Prometheus metric (labels included in ``name``)."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as resp:
            total = 0.0
            for line in resp.read().decode().splitlines():
                if line.startswith(name):
                    total += float(line.rsplit(" ", 1)[1])
            return total

    def labelled(self, name: str, **labels: str) -> float:
        """Sum of the samples of metric ``name`` that carry all of ``labels``."""
        wanted = {f'{k}="{v}"' for k, v in labels.items()}
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as resp:
            total = 0.0
            for line in resp.read().decode().splitlines():
                sample, _, value = line.rpartition(" ")
                metric, _, label_text = sample.partition("{")
                if metric == name and wanted <= set(label_text.rstrip("}").split(",")):
                    total += float(value)
            return total

    def processed(self) -> int:
        """Events taken in batches, of both sources: a forwarded order is taken twice."""
        return int(self.metric("orderstats_batch_events_sum"))

    def counted(self) -> int:
        """Orders counted (late ones included), whichever path they took."""
        return int(self.metric('orderstats_events_total{outcome="counted"}')
                   + self.metric('orderstats_events_total{outcome="late"}'))

    def _reap(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status, rusage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.rusage = rusage
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                return self.proc.returncode
            time.sleep(0.05)
        raise TimeoutError(f"worker {self.index} did not exit within {timeout}s")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as systemd or Kubernetes would; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self._reap(timeout)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self._reap(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class PeakRss:
    """Samples a process's RSS every 50 ms. (``ru_maxrss`` of a forked child starts at the
    parent's high-water mark, so it would report this runner's memory, not the child's.)"""

    def __init__(self, pid: int) -> None:
        self.peak = 0
        self._proc = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self._proc.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(0.05)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20
