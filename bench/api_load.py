"""Load on the all-stores question: many viewers polling ``GET /api/stores?limit=100``.

    .venv/bin/python -m bench.api_load [--broker kafka://HOST:PORT] [--stores 100000]
        [--count 200000] [--clients 20] [--seconds 20] [--backlog 400000]

Not a test. One worker, one deployment of its own (fresh topics; the local Kafka is started
unless --broker is given). Steps:

1. ``orderstats generate --count COUNT --stores STORES --rate 0``; the worker counts it all.
2. Cold cost: a few single requests more than a tick (1 s) apart, so each one recomputes
   (what every request cost before the per-tick cache).
3. Worker throughput without viewers: stop the worker, produce a backlog, restart it,
   measure events/s while it drains for SECONDS.
4. The same with CLIENTS concurrent clients polling /api/stores?limit=100 for SECONDS:
   events/s and p50/p99 latency of the requests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import aiohttp

from tests.support import ROOT, Deployment, free_port, http_json, wait_for


def start_kafka(data: Path) -> tuple[str, dict[str, str]]:
    port = free_port()
    env = {**os.environ, "ORDERSTATS_KAFKA_PORT": str(port),
           "ORDERSTATS_KAFKA_CONTROLLER_PORT": str(free_port()),
           "ORDERSTATS_KAFKA_DATA_DIR": str(data)}
    subprocess.run([str(ROOT / "scripts" / "kafka"), "start"], env=env, check=True, timeout=600)
    return f"kafka://127.0.0.1:{port}", env


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def poll(url: str, clients: int, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            async with session.get(url) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - t0)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return latencies, errors


def drain_rate(dep: Deployment, backlog: int, stores: int, seconds: float,
               viewers: tuple[str, int] | None) -> dict:
    """Stop the worker, produce ``backlog`` events, restart it and measure events/s for
    ``seconds`` (with ``viewers`` = (url, clients) polling meanwhile)."""
    worker = dep.workers[-1]
    worker.stop()
    dep.run("generate", "--count", str(backlog), "--stores", str(stores), "--rate", "0",
            "--seed", str(int(time.time())), timeout=900)
    worker = dep.worker(index=1)
    worker.wait_ready(timeout=300)
    start_n, t0 = worker.processed(), time.monotonic()
    target = start_n + backlog
    samples: list[tuple[float, int]] = [(t0, start_n)]
    stop = threading.Event()

    def sample() -> None:  # the worker's progress every 0.5 s, until the backlog is in
        while not stop.wait(0.5) and samples[-1][1] < target:
            try:
                samples.append((time.monotonic(), worker.processed()))
            except OSError:
                pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result: dict = {}
    if viewers:
        url, clients = viewers
        lat, errors = asyncio.run(poll(worker.url + url, clients, seconds))
        result.update(requests=len(lat), errors=errors, p50_ms=pct(lat, 0.5) * 1000,
                      p99_ms=pct(lat, 0.99) * 1000, rps=len(lat) / seconds)
    else:
        time.sleep(seconds)
    stop.set()
    sampler.join()
    # up to the sample where the backlog was all in (or the end of the phase)
    t_end, n_end = next(((t, n) for t, n in samples if n >= target), samples[-1])
    result["events_per_s"] = (n_end - start_n) / max(t_end - t0, 1e-9)
    result["drained"] = n_end >= target
    result["drain_s"] = t_end - t0
    return result


def drained(result: dict) -> str:
    return f" (backlog all in after {result['drain_s']:.1f} s)" if result["drained"] else ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--broker", default=os.environ.get("ORDERSTATS_BROKER", ""))
    p.add_argument("--stores", type=int, default=100_000)
    p.add_argument("--count", type=int, default=200_000)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--backlog", type=int, default=400_000)
    p.add_argument("--path", default="/api/stores?limit=100")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="api-load-"))
    kafka_env = None
    broker = args.broker
    if not broker:
        broker, kafka_env = start_kafka(tmp / "kafka")
    dep = Deployment(broker, tmp)
    try:
        t0 = time.monotonic()
        dep.run("generate", "--count", str(args.count), "--stores", str(args.stores),
                "--rate", "0", timeout=900)
        worker = dep.worker()
        worker.wait_ready(timeout=300)
        wait_for(lambda: worker.processed() >= args.count, 600, what="initial load counted")
        status, body = http_json(worker.url + "/api/stores?limit=1", timeout=60)
        assert status == 200, body
        print(f"loaded {args.count} orders, {body['count']} stores "
              f"in {time.monotonic() - t0:.0f} s")

        cold = []
        for _ in range(5):
            time.sleep(1.2)  # past the tick: this request recomputes
            t = time.perf_counter()
            http_json(worker.url + args.path, timeout=60)
            cold.append(time.perf_counter() - t)
        print(f"cold request (recomputes; the per-request cost before the cache): "
              f"median {statistics.median(cold) * 1000:.0f} ms")

        quiet = drain_rate(dep, args.backlog, args.stores, args.seconds, None)
        print(f"without viewers: {quiet['events_per_s']:,.0f} events/s"
              f"{drained(quiet)}")
        busy = drain_rate(dep, args.backlog, args.stores, args.seconds,
                          (args.path, args.clients))
        print(f"with {args.clients} clients polling {args.path} for {args.seconds:.0f} s: "
              f"{busy['events_per_s']:,.0f} events/s"
              f"{drained(busy)}; "
              f"{busy['requests']} requests ({busy['rps']:.0f}/s, {busy['errors']} errors), "
              f"p50 {busy['p50_ms']:.1f} ms, p99 {busy['p99_ms']:.1f} ms")
    finally:
        dep.cleanup()
        if kafka_env is not None:
            subprocess.run([str(ROOT / "scripts" / "kafka"), "stop"], env=kafka_env,
                           timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
