"""orderstats as a contender: the shipped worker process, results read through its live API.

Nothing polls the worker while it works: its timed window ends when its group's committed
offsets reach the log end (polled from the broker like every contender's), and it records its
own times: the first batch's start (``orderstats_first_batch_started_seconds``) and the last
record processed. For the latter the worker's gauge ``orderstats_last_batch_finished_seconds``
is used when it has one; a worker without it is read from the broker instead: the newest
timestamp of its progress changelog, which the worker writes (stamped at send) as the last
step of every batch of every partition.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import time
import uuid
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.committed import CommitWatch
from bench.dataset import Dataset, Windows
from bench.measurement import Measurement, measure
from bench.sampler import ProcSampler
from tables.schema import PROGRESS, changelog_topic, repartition_topic
from tests.worker_process import WorkerProcess

LAST_BATCH_METRIC = "orderstats_last_batch_finished_seconds"
ROOT = Path(__file__).resolve().parent.parent


async def _api_windows(url: str, stores: list[str]) -> Windows:
    out: Windows = {}
    sem = asyncio.Semaphore(16)
    async with aiohttp.ClientSession() as session:
        async def one(store: str) -> None:
            async with sem, session.get(f"{url}/api/stores/{store}",
                                        params={"limit": "10000"}) as resp:
                if resp.status == 200:
                    body = await resp.json()
                    out[store] = {w["start"]: [w["orders"], w["revenue"], w["items"]]
                                  for w in body["windows"]}
        await asyncio.gather(*(one(s) for s in stores))
    return out


async def newest_timestamp_s(broker: str, topic: str, timeout: float = 30) -> float:
    """The newest record timestamp (producer's send time) over ``topic``'s partitions."""
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(tps)
        todo = {tp for tp in tps if ends[tp] > 0}
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, ends[tp] - 1)
        newest = 0
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                newest = max(newest, *(r.timestamp for r in records))
                todo.discard(tp)
        return newest / 1000
    finally:
        await consumer.stop()


def plain_binary(work: Path) -> str:
    """An ``orderstats`` executable without the GC tuning (bench/untuned_worker.py)."""
    path = work / "orderstats-plain"
    path.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}${{PYTHONPATH:+:$PYTHONPATH}}" '
                    f'exec "{sys.executable}" -m bench.untuned_worker "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


class _WorkerGroup:
    """A sampler's view of several worker processes as one contender: CPU summed, peak RSS
    of the largest worker (each is a process of its own, on a machine of its own in
    production)."""

    def __init__(self, sampler: ProcSampler, workers: list[str]) -> None:
        self.sampler, self.workers = sampler, workers

    def cpu_s(self, name: str, start: float, end: float) -> float | None:
        if name != "contender":
            return self.sampler.cpu_s(name, start, end)
        parts = [self.sampler.cpu_s(w, start, end) for w in self.workers]
        return None if None in parts else sum(parts)  # type: ignore[arg-type]

    def peak_rss_mb(self, name: str, start: float, end: float) -> float | None:
        if name != "contender":
            return self.sampler.peak_rss_mb(name, start, end)
        return max((r for r in (self.sampler.peak_rss_mb(w, start, end)
                                for w in self.workers) if r is not None), default=None)


def run_orderstats(broker: str, broker_pid: int | None, data: Dataset, work: Path,
                   timeout: float, label: str = "orderstats", binary: str | None = None,
                   untuned: bool = False, repartitioned: bool = False,
                   workers: int = 1) -> Measurement:
    """``untuned``: without uvloop and GC tuning; ``repartitioned``: unkeyed input, every
    order forwarded through the repartition topic, which must then be committed too;
    ``workers``: that many worker processes in one group (scale-out; the clock starts at
    the first batch of any of them and the group's committed offsets end it, as always)."""
    name = f"bench-os-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "ORDERSTATS_BROKER": f"kafka://{broker}", "ORDERSTATS_APP_ID": name,
           "ORDERSTATS_ORDERS_TOPIC": data.topic, "ORDERSTATS_DLQ_TOPIC": f"{name}-dlq"}
    if untuned:
        env["ORDERSTATS_EVENT_LOOP"] = "asyncio"
        binary = plain_binary(work)
    group = [WorkerProcess(env, work / f"{name}-w{i + 1}", index=i + 1,
                           **({"binary": binary} if binary else {})).start(loglevel="warn")
             for i in range(workers)]
    worker = group[0]
    names = ["contender"] + [f"worker-{i + 1}" for i in range(1, workers)]
    raw = ProcSampler({**{n: w.proc.pid for n, w in zip(names, group)},
                       **({"broker": broker_pid} if broker_pid else {})})
    sampler = raw if workers == 1 else _WorkerGroup(raw, names)
    follow = (repartition_topic(name),) if repartitioned else ()
    watch = CommitWatch(broker, name, {data.topic: data.ends}, follow)
    problems: list[str] = []
    windows: Windows = {}
    first = processed = 0.0
    source = "metric"
    try:
        if not watch.wait(timeout, lambda: all(w.alive() for w in group)):
            problems.append(f"committed offsets never reached the log end, see "
                            f"{worker.log_path}")
        else:
            for w in group:
                w.wait_ready(timeout=120)
            firsts = [f for f in (w.metric("orderstats_first_batch_started_seconds")
                                  for w in group) if f]
            first = min(firsts, default=0.0)
            processed = max(w.metric(LAST_BATCH_METRIC) for w in group)
            if not processed:
                source = "progress changelog timestamp"
                processed = asyncio.run(newest_timestamp_s(broker,
                                                           changelog_topic(name, PROGRESS)))
            windows = asyncio.run(_api_windows(worker.url, sorted(data.truth)))
    finally:
        watch.stop()
        for w in group:
            if w.alive():
                w.stop()
        raw.stop()
    return measure(label, data, first, processed, watch.reached_at, sampler, windows,
                   problems, source)
