"""Helpers for tests that run real worker processes against the session's Kafka broker."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from app.kafka.clients import Connection
from app.kafka.dlq import SOURCE, DeadLetter, count_range
from app.kafka.dlq import read_topic as read_dlq
from tests.worker_process import ORDERSTATS, WorkerProcess, free_port, http_json
from tests.worker_process import wait_for as bench_wait_for

__all__ = ["ORDERSTATS", "Deployment", "WorkerProcess", "assert_dead_letters",
           "assert_matches_truth", "free_port", "http_json", "merge_truths", "wait_for"]

ROOT = Path(__file__).resolve().parent.parent
# What the worker adds to a dead letter, after the producer's own headers (agents/batch.py)
DLQ_HEADERS = ["orderstats.reason", SOURCE + "topic", SOURCE + "partition", SOURCE + "offset"]


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

    @property
    def dlq_topic(self) -> str:
        return f"orders-dlq-{self.name}"

    def worker(self, index: int = 1, host: str = "127.0.0.1", **env: str) -> WorkerProcess:
        w = WorkerProcess({**self.env, **{k.upper(): v for k, v in env.items()}},
                          self.tmp / f"{self.name}-w{index}", host=host, index=index).start()
        self.workers.append(w)
        return w

    def cleanup(self) -> None:
        for w in self.workers:
            if w.alive():
                w.kill()

    def try_run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run an ``orderstats`` command in this deployment; its exit code is the caller's."""
        return subprocess.run([ORDERSTATS, *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run an ``orderstats`` command in this deployment; fails the test on error."""
        proc = self.try_run(*args, timeout=timeout)
        assert proc.returncode == 0, f"orderstats {' '.join(args)} failed:\n{proc.stderr}"
        return proc

    def generate(self, truth: Path, *args: str) -> dict:
        self.run("generate", "--truth", str(truth), *args)
        return orjson.loads(truth.read_bytes())


def merge_truths(*truths: dict) -> dict:
    """Ground truth of several generator runs (different seeds share no order ids)."""
    out: dict = {"stores": {}, "invalid_events": [], "valid": 0, "invalid": 0}
    for truth in truths:
        for key in ("valid", "invalid"):
            out[key] += truth[key]
        out["invalid_events"].extend(truth["invalid_events"])
        if truth.get("watermark"):  # same ISO format throughout: the greatest string wins
            out["watermark"] = max(out.get("watermark") or "", truth["watermark"])
        for store_id, s in truth["stores"].items():
            m = out["stores"].setdefault(store_id, {"totals": dict.fromkeys(
                ("orders", "revenue", "items", "late"), 0), "windows": {}})
            for k, v in s["totals"].items():
                m["totals"][k] += v
            for start, w in s["windows"].items():
                mw = m["windows"].setdefault(start, dict.fromkeys(("orders", "revenue",
                                                                    "items"), 0))
                for k, v in w.items():
                    mw[k] += v
    return out


def read_dead_letters(dep: Deployment) -> list[DeadLetter]:
    """Every record of the deployment's dead-letter topic."""
    async def read() -> list[DeadLetter]:
        conn = Connection(dep.broker)
        ranges = await count_range(conn, dep.dlq_topic)
        return [dl async for dl in read_dlq(conn, dep.dlq_topic, ranges)]
    return asyncio.run(read())


def assert_dead_letters(dep: Deployment, truth: dict) -> int:
    """The dead-letter topic holds exactly the truth's invalid events: the same key, value
    bytes and producer headers (kept first, in order), then the reason and the source
    record's topic, partition and offset. Returns how many extra copies it holds.

    Each source record is dead-lettered once, also across a kill -9 (agents/orders.py
    check_letters) and a lost acknowledgement (the idempotent producer)."""
    letters = read_dead_letters(dep)
    problems: list[str] = []
    by_origin: dict[str, set[tuple]] = {}
    for dl in letters:
        names = [name for name, _v in dl.headers]
        own = tuple((n, v) for n, v in dl.headers if not n.startswith("orderstats."))
        if names[len(own):] != DLQ_HEADERS or names[:len(own)] != [n for n, _v in own]:
            problems.append(f"{dl.where}: headers {names}")
        if not dl.reason.strip() or dl.header(SOURCE + "topic") != dep.topic:
            problems.append(f"{dl.where}: reason {dl.reason!r}, source {dl.origin}")
        by_origin.setdefault(dl.origin, set()).add((dl.key, dl.value, own, dl.reason))
    copies = len(letters) - len(by_origin)
    if copies:
        where: dict[str, list[str]] = {}
        for dl in letters:
            where.setdefault(dl.origin, []).append(dl.where)
        problems.append(f"{copies} source records dead-lettered more than once: "
                        f"{[(o, w) for o, w in where.items() if len(w) > 1][:5]}")
    problems.extend(f"{origin}: copies differ: {sorted(v)[:2]}"
                    for origin, v in by_origin.items() if len(v) > 1)
    got: Counter[tuple] = Counter(next(iter(v))[:3] for v in by_origin.values())
    want: Counter[tuple] = Counter(
        (None if e["key"] is None else base64.b64decode(e["key"]), base64.b64decode(e["value"]),
         tuple((n, base64.b64decode(v)) for n, v in e["headers"]))
        for e in truth["invalid_events"])
    if got != want:
        problems.append(f"{sum((got - want).values())} dead letters not in the truth "
                        f"(first {list(got - want)[:2]}), {sum((want - got).values())} "
                        f"invalid events missing (first {list(want - got)[:2]})")
    assert len(by_origin) == len(truth["invalid_events"]) == truth["invalid"] and not problems, \
        (len(letters), len(by_origin), len(truth["invalid_events"]), truth["invalid"],
         problems[:10])
    return copies


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
