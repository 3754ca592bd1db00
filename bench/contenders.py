"""Running each contender on the dataset and measuring it as a whole process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
import orjson

from bench.dataset import Dataset, Windows, diff_windows
from tests.worker_process import PeakRss, WorkerProcess

PEERS = {
    "ceiling": "bench.ceiling_contender",
    "naive-faust": "bench.naive_faust_contender",
    "quix": "bench.quix_contender",
}
CONTENDERS = ("ceiling", "naive-faust", "quix", "orderstats")


@dataclass
class Measurement:
    contender: str
    events: int
    seconds: float  # first event consumed -> last event consumed
    events_per_s: float
    peak_rss_mb: float
    cpu_s: float
    correct: bool
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {**asdict(self), "problems": self.problems[:5]}


def _measure(name: str, data: Dataset, first: float, done: float, rusage: object,
             peak_mb: float, windows: Windows) -> Measurement:
    problems = diff_windows(data.truth, windows)
    seconds = max(done - first, 1e-9)
    return Measurement(name, data.records, seconds, data.records / seconds, peak_mb,
                       rusage.ru_utime + rusage.ru_stime, not problems, problems)


def run_peer(name: str, broker: str, data: Dataset, work: Path, timeout: float) -> Measurement:
    """A contender script: it consumes ``data.events`` events, writes its result, exits."""
    out = work / f"{name}-{uuid.uuid4().hex[:6]}.json"
    state = work / f"state-{out.stem}"
    cmd = [sys.executable, "-m", PEERS[name], "--broker", broker, "--topic", data.topic,
           "--group", f"bench-{out.stem}", "--expected", str(data.events), "--out", str(out),
           "--state-dir", str(state)]
    with open(work / f"{out.stem}.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    rss = PeakRss(proc.pid)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    peak_mb = rss.stop()
    if not out.exists():
        return Measurement(name, data.events, 0, 0, peak_mb,
                           rusage.ru_utime + rusage.ru_stime, False,
                           [f"no result (exit status {status}), see {work}/{out.stem}.log"])
    result = orjson.loads(out.read_bytes())
    return _measure(name, data, result["first_event_at"], result["done_at"], rusage, peak_mb,
                    result["windows"])


async def _api_windows(url: str, stores: list[str]) -> Windows:
    out: Windows = {}
    sem = asyncio.Semaphore(16)
    async with aiohttp.ClientSession() as session:
        async def one(store: str) -> None:
            async with sem, session.get(f"{url}/api/stores/{store}",
                                        params={"limit": "10000"}) as resp:
                if resp.status == 200:
                    body = await resp.json()
                    out[store] = {w["start"]: [w["orders"], w["revenue"]]
                                  for w in body["windows"]}
        await asyncio.gather(*(one(s) for s in stores))
    return out


BASELINE = "baseline"  # orderstats of another install (``--baseline PATH``), e.g. before a change
UNKEYED = "orderstats-unkeyed"  # orderstats on the same orders produced without keys
HOSTILE = "orderstats-hostile"  # orderstats on the same orders with hostile events mixed in


def run_orderstats(broker: str, data: Dataset, work: Path, timeout: float,
                   label: str = "orderstats", binary: str | None = None) -> Measurement:
    """orderstats as shipped: a worker process; results read back through its live API."""
    name = f"bench-os-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "ORDERSTATS_BROKER": f"kafka://{broker}", "ORDERSTATS_APP_ID": name,
           "ORDERSTATS_ORDERS_TOPIC": data.topic, "ORDERSTATS_DLQ_TOPIC": f"{name}-dlq"}
    worker = WorkerProcess(env, work / name, **({"binary": binary} if binary else {})
                           ).start(loglevel="warn")
    rss = PeakRss(worker.proc.pid)
    try:
        worker.wait_ready(timeout=120)
        # Timed like the peers: from the start of the first batch to the last event.
        first = done = 0.0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = worker.counted()
            bad = worker.metric('orderstats_events_total{outcome="invalid"}') if data.hostile else 0
            now = time.time()
            if n >= data.events and bad >= data.hostile:
                done = now
                first = worker.metric("orderstats_first_batch_started_seconds")
                break
            time.sleep(0.02)
        windows = asyncio.run(_api_windows(worker.url, sorted(data.truth)))
    finally:
        peak_mb = rss.stop()
        worker.stop()
    if not done:
        return Measurement(label, data.events, 0, 0, peak_mb, 0, False,
                           ["did not finish in time"])
    return _measure(label, data, first, done, worker.rusage, peak_mb, windows)


def run_contender(name: str, broker: str, data: Dataset, work: Path,
                  timeout: float = 900, baseline: str | None = None) -> Measurement:
    if name == "orderstats":
        return run_orderstats(broker, data, work, timeout)
    if name == BASELINE:
        return run_orderstats(broker, data, work, timeout, BASELINE, baseline)
    if name == UNKEYED:
        assert data.unkeyed is not None, "--unkeyed produces the unkeyed dataset"
        return run_orderstats(broker, data.unkeyed, work, timeout, UNKEYED)
    if name == HOSTILE:
        assert data.with_hostile is not None, "--hostile produces the dataset with hostile events"
        return run_orderstats(broker, data.with_hostile, work, timeout, HOSTILE)
    return run_peer(name, broker, data, work, timeout)
