"""orderstats-only measurements: end-to-end latency under load, recovery, replay rate."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import time
import uuid
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from app.cli.order_generator import GeneratorConfig, OrderGenerator
from app.kafka.clients import Connection
from app.kafka.offsets import commit_offsets, log_bounds
from app.kafka.topics import ensure_topic
from app.timefmt import format_iso_ms
from tests.worker_process import PeakRss
from bench.dataset import produce_dataset
from tests.worker_process import WorkerProcess, wait_for


def _env(broker: str, name: str, topic: str) -> dict[str, str]:
    return {**os.environ, "ORDERSTATS_BROKER": f"kafka://{broker}", "ORDERSTATS_APP_ID": name,
            "ORDERSTATS_ORDERS_TOPIC": topic, "ORDERSTATS_DLQ_TOPIC": f"{name}-dlq"}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _load_and_probe(broker: str, topic: str, url: str, rate: int, seconds: float,
                          stores: int) -> dict:
    gen = OrderGenerator(GeneratorConfig(stores=stores, seed=rate))
    now = int(time.time() * 1000)
    events = [gen.event(now, now) for _ in range(int(rate * seconds))]  # pre-built: the
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=5)  # load
    await producer.start()  # generator must not compete with the worker for the CPU
    latencies: list[float] = []
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
        store = f"probe-{uuid.uuid4().hex[:8]}"
        doc = {"order_id": f"p-{i}", "store_id": store, "items": [{"sku": "P", "qty": 1,
               "unit_price": 1}], "total": 1, "created_at": format_iso_ms(int(time.time()
                                                                             * 1000))}
        t0 = time.monotonic()
        await producer.send(topic, value=orjson.dumps(doc), key=orjson.dumps(store))
        while time.monotonic() - t0 < 30:
            async with session.get(f"{url}/api/stores/{store}?limit=0") as resp:
                if resp.status == 200:
                    latencies.append(time.monotonic() - t0)
                    return
            await asyncio.sleep(0.01)

    async with aiohttp.ClientSession() as session:
        loader = asyncio.create_task(load())
        probes = []
        await asyncio.sleep(2)  # let the load settle first
        i = 0
        while not stop.is_set():
            probes.append(asyncio.create_task(probe(session, i)))
            i += 1
            await asyncio.sleep(0.2)
        await loader
        await asyncio.gather(*probes)
    await producer.stop()
    return {"offered_per_s": rate, "probes": len(latencies),
            "p50_s": statistics.median(latencies), "p99_s": _percentile(latencies, 0.99),
            "max_s": max(latencies)}


def latency(broker: str, work: Path, rates: list[int], seconds: float, stores: int) -> list:
    results = []
    for rate in rates:
        name = f"bench-lat-{rate}-{uuid.uuid4().hex[:6]}"
        asyncio.run(ensure_topic(Connection(broker), name, 8))
        worker = WorkerProcess(_env(broker, name, name), work / name).start("warn")
        try:
            worker.wait_ready()
            results.append(asyncio.run(_load_and_probe(broker, name, worker.url, rate,
                                                       seconds, stores)))
        finally:
            worker.stop()
        print(f"  latency at {rate:,}/s: {results[-1]}", flush=True)
    return results


def recovery(broker: str, work: Path, events: int, stores: int) -> dict:
    """Process ``events``, then time restarts (local state kept / rebuilt from changelogs)
    and a replay of the whole topic with the state kept."""
    name = f"bench-rec-{uuid.uuid4().hex[:6]}"
    print(f"  producing {events:,} events for the recovery run...", flush=True)
    produce_dataset(broker, name, events, stores, seed=11)
    env = _env(broker, name, name)
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
