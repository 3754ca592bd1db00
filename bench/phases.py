"""orderstats-only measurements: end-to-end latency under load, recovery, replay rate."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import time
import uuid
from pathlib import Path
from typing import Sequence

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from app.cli.order_generator import GeneratorConfig, OrderGenerator
from app.kafka.clients import Connection
from app.kafka.offsets import commit_offsets, log_bounds
from app.kafka.topics import ensure_topic
from app.timefmt import format_iso_ms
from bench.broker_pid import find_broker_pid
from bench.sampler import read_stat
from tests.worker_process import PeakRss
from bench.dataset import produce_dataset
from tests.worker_process import WorkerProcess, http_json, wait_for


def worker_env(broker: str, name: str, topic: str) -> dict[str, str]:
    return {**os.environ, "ORDERSTATS_BROKER": f"kafka://{broker}", "ORDERSTATS_APP_ID": name,
            "ORDERSTATS_ORDERS_TOPIC": topic, "ORDERSTATS_DLQ_TOPIC": f"{name}-dlq"}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _CpuOf:
    """CPU seconds of some processes from now on, as cores used on average (the generator
    is this process: its load loop and the probes)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.start = time.monotonic()
        self.before = {name: self._cpu(pid) for name, pid in pids.items()}
        self.pids = pids

    @staticmethod
    def _cpu(pid: int) -> float | None:
        try:
            return read_stat(pid)[0] if pid else None
        except (OSError, IndexError, ValueError):
            return None  # exited, or not visible here

    def used(self) -> dict[str, float | None]:
        wall = time.monotonic() - self.start
        out: dict[str, float | None] = {}
        for name, pid in self.pids.items():
            now, then = self._cpu(pid), self.before[name]
            out[name] = None if now is None or then is None else round((now - then) / wall, 2)
        return out


# How often a probe asks whether its order is visible: the resolution of the figures. The
# probes poll the worker they measure, on its one event loop; side by side at 20,000/s
# (bench/results/latency-polls-20261124.json) 10 ms made 119 requests/s and 50 ms 42, with the
# same latency within the noise. 50 ms keeps the probes' own load low when latency is high.
PROBE_POLL_S = 0.05
# The percentiles are of the probes sent from this long after the load began: the sustained
# latency. A fresh worker's first seconds of orders are slower (at 20,000/s, probes sent in
# the first 5 s waited up to 2-3 s, later ones 0.5-0.9 s: the backlog of its first batches
# drains slowly at a rate near its capacity). Every probe from 2 s on is in the timeline and
# in the ``*_all_s`` figures.
LOAD_SETTLE_S = 10.0
FIRST_PROBE_S = 2.0


async def _load_and_probe(broker: str, topic: str, url: str, rate: int, seconds: float,
                          stores: int, worker_pid: int = 0, poll_s: float = PROBE_POLL_S
                          ) -> dict:
    gen = OrderGenerator(GeneratorConfig(stores=stores, seed=rate))
    now = int(time.time() * 1000)
    events = [gen.event(now, now) for _ in range(int(rate * seconds))]  # pre-built: the
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=5)  # load
    await producer.start()  # generator must not compete with the worker for the CPU
    polls = 0
    timeline: list[tuple[float, float]] = []  # (probe sent, s after the load began; latency)
    begun, begun_wall = time.monotonic(), time.time()
    stop = asyncio.Event()

    async def load() -> None:
        started = time.monotonic()
        for i, (key, value) in enumerate(events):
            await producer.send(topic, value=value, key=key)
            if i % 200 == 0:
                ahead = i / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        stop.set()

    async def probe(session: aiohttp.ClientSession, i: int) -> None:
        nonlocal polls
        store = f"probe-{uuid.uuid4().hex[:8]}"
        doc = {"order_id": f"p-{i}", "store_id": store, "items": [{"sku": "P", "qty": 1,
               "unit_price": 1}], "total": 1, "created_at": format_iso_ms(int(time.time()
                                                                             * 1000))}
        t0 = time.monotonic()
        await producer.send(topic, value=orjson.dumps(doc), key=orjson.dumps(store))
        while time.monotonic() - t0 < 30:
            polls += 1
            async with session.get(f"{url}/api/stores/{store}?limit=0") as resp:
                if resp.status == 200:
                    timeline.append((round(t0 - begun, 2), time.monotonic() - t0))
                    return
            await asyncio.sleep(poll_s)

    cpu = _CpuOf({"worker": worker_pid, "broker": find_broker_pid(broker),
                  "generator": os.getpid()})
    async with aiohttp.ClientSession() as session:
        loader = asyncio.create_task(load())
        probes = []
        await asyncio.sleep(FIRST_PROBE_S)
        i = 0
        while not stop.is_set():
            probes.append(asyncio.create_task(probe(session, i)))
            i += 1
            await asyncio.sleep(0.2)
        await loader
        await asyncio.gather(*probes)
    wall = time.monotonic() - cpu.start
    used = cpu.used()  # the load and the probes' wait, not the producer's start and stop
    await producer.stop()
    timeline.sort()
    latencies = [waited for _sent, waited in timeline]
    sustained = [waited for sent, waited in timeline if sent >= LOAD_SETTLE_S]
    return {"offered_per_s": rate, "probes": len(sustained), "poll_interval_s": poll_s,
            "probes_from_s": LOAD_SETTLE_S, "probes_all_from_s": FIRST_PROBE_S,
            "probe_requests_per_s": round(polls / wall, 1),
            "p50_s": statistics.median(sustained), "p99_s": _percentile(sustained, 0.99),
            "max_s": max(sustained), "cpu_cores_used": used,
            "probes_all": len(latencies), "p50_all_s": statistics.median(latencies),
            "p99_all_s": _percentile(latencies, 0.99), "max_all_s": max(latencies),
            "load_began_second_of_minute": round(begun_wall % 60, 1),  # when windows close
            "timeline": [(sent, round(waited, 3)) for sent, waited in timeline]}


def latency(broker: str, work: Path, rates: list[int], seconds: float, stores: int,
            polls_s: Sequence[float] = (PROBE_POLL_S,)) -> list:
    """Produce-to-visible latency per offered rate (and per probe poll interval), each on a
    fresh topic and worker."""
    if seconds < LOAD_SETTLE_S + 5:
        raise SystemExit(f"--latency-seconds must be at least {LOAD_SETTLE_S + 5:.0f}: the "
                         f"percentiles are of the probes sent after {LOAD_SETTLE_S:.0f} s")
    results = []
    for rate in rates:
        for poll_s in polls_s:
            name = f"bench-lat-{rate}-{uuid.uuid4().hex[:6]}"
            asyncio.run(ensure_topic(Connection(broker), name, 8))
            worker = WorkerProcess(worker_env(broker, name, name), work / name).start("warn")
            try:
                worker.wait_ready()
                results.append(asyncio.run(_load_and_probe(
                    broker, name, worker.url, rate, seconds, stores, worker.proc.pid, poll_s)))
            finally:
                worker.stop()
            shown = {k: v for k, v in results[-1].items() if k != "timeline"}
            print(f"  latency at {rate:,}/s: {shown}", flush=True)
    return results


def recovery(broker: str, work: Path, events: int, stores: int) -> dict:
    """Process ``events``, then time restarts (local state kept / rebuilt from changelogs)
    and a replay of the whole topic with the state kept."""
    name = f"bench-rec-{uuid.uuid4().hex[:6]}"
    print(f"  producing {events:,} events for the recovery run...", flush=True)
    produce_dataset(broker, name, events, stores, seed=11)
    env = worker_env(broker, name, name)
    data_dir = work / name
    worker = WorkerProcess(env, data_dir).start("warn")
    worker.wait_ready()
    wait_for(lambda: worker.processed() >= events, 900, 0.2, "the recovery dataset")
    worker.stop()
    out: dict = {"events": events}

    worker = WorkerProcess(env, data_dir).start("warn")
    out["restart_with_local_state_s"] = worker.wait_ready()
    worker.stop()
    shutil.rmtree(data_dir)
    worker = WorkerProcess(env, data_dir).start("warn")
    out["restart_from_changelogs_s"] = worker.wait_ready(timeout=600)
    worker.stop()

    bounds = asyncio.run(log_bounds(Connection(broker), name))
    asyncio.run(commit_offsets(Connection(broker), name, name,
                               {p: lo for p, (lo, _hi) in bounds.items()}))
    worker = WorkerProcess(env, data_dir).start("warn")
    rss = PeakRss(worker.proc.pid)
    worker.wait_ready()
    started = time.monotonic()
    wait_for(lambda: worker.processed() >= events, 900, 0.05, "the replay")
    out["replay_events_per_s"] = events / (time.monotonic() - started)
    out["peak_rss_mb_during_replay"] = rss.stop()
    worker.stop()
    print(f"  recovery: {out}", flush=True)
    return out


def burst(broker: str, work: Path, events: int, stores: int, delay_s: float = 0.25,
          batch_max: int = 1000) -> dict:
    """``events`` orders produced at once into a worker slowed to at most ``batch_max`` events
    per ``delay_s`` (the test knob ORDERSTATS_TEST_BATCH_DELAY_S; under 4,000 events/s, below
    the producer's rate): the lag grows and drains; memory must not follow the lag (the
    fetcher and the stream buffer are bounded)."""
    name = f"bench-burst-{uuid.uuid4().hex[:6]}"
    env = {**worker_env(broker, name, name), "ORDERSTATS_TEST_BATCH_DELAY_S": str(delay_s),
           "ORDERSTATS_BATCH_MAX": str(batch_max)}
    asyncio.run(ensure_topic(Connection(broker), name, 8))
    worker = WorkerProcess(env, work / name).start("warn")
    worker.wait_ready()
    rss = PeakRss(worker.proc.pid)
    started = time.monotonic()
    print(f"  burst: producing {events:,} orders into a worker slowed by {delay_s} s per "
          "batch...", flush=True)
    produce_dataset(broker, name, events, stores, seed=13)
    produced_s = time.monotonic() - started
    max_lag = 0.0

    def drained() -> bool:
        nonlocal max_lag
        max_lag = max(max_lag, worker.metric("orderstats_consumer_lag"))
        return worker.counted() >= events

    wait_for(drained, 1800, 0.5, "the burst to drain")
    out = {"events": events, "batch_delay_s": delay_s, "produced_s": round(produced_s, 1),
           "drained_s": round(time.monotonic() - started, 1), "max_lag_seen": int(max_lag),
           "peak_rss_mb": round(rss.stop(), 1)}
    worker.stop()
    print(f"  burst: {out}", flush=True)
    return out


def serve_queries(worker: WorkerProcess, stores: int, seconds: float = 20) -> float:
    """Peak RSS (MB) over ``seconds`` of answering all-stores and single-store questions."""
    sampler = PeakRss(worker.proc.pid)
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        try:
            http_json(f"{worker.url}/api/stores?limit=50", timeout=30)
            http_json(f"{worker.url}/api/stores/s-{i % stores:04d}?limit=1440")
        except OSError:  # a slow answer: the RSS is what is measured here
            pass
        i += 1
    return round(sampler.stop(), 1)


def steady(broker: str, work: Path, events: int, stores: int, span_s: int = 86_400) -> dict:
    """A day of 60 s windows over many stores: ``events`` orders spread over ``span_s``
    seconds and ``stores`` stores are processed, then the worker serves with that state on
    disk; its RSS then (and after a restart with the local state) is the steady state."""
    name = f"bench-steady-{uuid.uuid4().hex[:6]}"
    print(f"  steady: producing {events:,} orders over {stores:,} stores and "
          f"{span_s // 3600} h...", flush=True)
    produce_dataset(broker, name, events, stores, seed=17, span_s=span_s)
    env = worker_env(broker, name, name)
    worker = WorkerProcess(env, work / name).start("warn")
    rss = PeakRss(worker.proc.pid)
    worker.wait_ready()
    wait_for(lambda: worker.counted() >= events, 1800, 0.5, "the day of orders")
    out: dict = {"events": events, "stores": stores, "span_h": span_s / 3600,
                 "peak_rss_mb_processing": round(rss.stop(), 1),
                 "window_keys": int(worker.metric('orderstats_table_keys{table="windows"}'))}

    out["rss_mb_serving"] = serve_queries(worker, stores)
    worker.stop()
    out["state_on_disk_mb"] = round(sum(f.stat().st_size for f in (work / name).rglob("*")
                                        if f.is_file()) / 2**20, 1)
    worker = WorkerProcess(env, work / name).start("warn")
    worker.wait_ready(timeout=600)
    out["rss_mb_serving_after_restart"] = serve_queries(worker, stores)
    worker.stop()
    print(f"  steady: {out}", flush=True)
    return out

