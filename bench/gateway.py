"""Gateway benchmark: POST latency and throughput while the stats workers run, are stopped,
or are slowed; and the first design as a contender (a synchronous stats service).

    scripts/bench --gateway [--posts 5000] [--clients 16] [--delay 0.1]
    .venv/bin/python -m bench.gateway --broker 127.0.0.1:9092

* **gateway** (``orderstats gateway``, one worker behind it): each phase POSTs ``--posts``
  single orders from ``--clients`` concurrent clients: (a) the worker running, (b) the
  worker stopped, (c) the worker slowed by ``ORDERSTATS_TEST_BATCH_DELAY_S`` (a sleep per
  batch, a test knob). Then a normal worker resumes; the time until the API equals the
  truth of every acknowledged order exactly is reported.
* **sync service**: the first design, a tiny stats service whose POST updates an in-memory
  counter before it answers (the same JSON decoding and checks), slowed by the same delay
  per update. Stopped, every POST fails; restarted, its counts are gone.

Not a test: it prints a markdown table (and writes it to bench-results/gateway.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

from app.cli.order_generator import GroundTruth
from app.cli.verify import compare
from app.timefmt import format_iso_ms
from tests.worker_process import ORDERSTATS, WorkerProcess, free_port, stop_process, wait_for

ROOT = Path(__file__).resolve().parent.parent
STORES = 100


@dataclass
class Phase:
    design: str
    phase: str
    posts: int = 0
    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""

    def pct(self, q: float) -> str:
        if not self.latencies:
            return "-"
        ordered = sorted(self.latencies)
        return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.1f}"

    def row(self) -> str:
        rate = self.ok / self.seconds if self.seconds else 0
        return (f"| {self.design} | {self.phase} | {self.posts:,} | {self.ok:,} | "
                f"{self.failed:,} | {self.pct(0.5)} | {self.pct(0.99)} | {rate:,.0f} | "
                f"{self.note} |")


def order(n: int, run: str) -> dict:
    qty = 1 + n % 3
    return {"order_id": f"{run}-{n}", "store_id": f"s-{n % STORES:04d}",
            "created_at": format_iso_ms(int(time.time() * 1000)),
            "items": [{"sku": "A-1", "qty": qty, "unit_price": 250}], "total": qty * 250,
            "currency": "JPY"}


async def load(url: str, design: str, phase: str, posts: int, clients: int, run: str,
               start: int, truth: GroundTruth | None) -> Phase:
    """``posts`` single-order POSTs from ``clients`` concurrent clients."""
    result = Phase(design, phase, posts)
    counter = iter(range(start, start + posts))
    timeout = aiohttp.ClientTimeout(total=30)

    async def client(session: aiohttp.ClientSession) -> None:
        for n in counter:
            doc = order(n, run)
            body = orjson.dumps(doc)
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, asyncio.TimeoutError):
                status = 0
            elapsed = time.perf_counter() - t0
            if 200 <= status < 300:
                result.ok += 1
                result.latencies.append(elapsed)
                if truth is not None:
                    truth.add(doc["store_id"], _created(doc), doc["total"],
                              doc["items"][0]["qty"], False)
            else:
                result.failed += 1

    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    result.seconds = time.perf_counter() - started
    return result


def _created(doc: dict) -> int:
    from app.timefmt import parse_iso_ms
    return parse_iso_ms(doc["created_at"])


class Proc:
    """A child process (gateway or sync service) in its own session, stopped by SIGTERM."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def stop(self) -> None:
        stop_process(self.proc)


def http_ok(url: str) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


async def catch_up(url: str, truth: GroundTruth, timeout: float) -> float | None:
    """Seconds until the API equals ``truth`` exactly (None: not within ``timeout``)."""
    t0 = time.monotonic()
    want = truth.to_json()
    while time.monotonic() - t0 < timeout:
        if not await compare(url, want):
            return time.monotonic() - t0
        await asyncio.sleep(0.5)
    return None


def run_gateway_design(broker: str, tmp: Path, posts: int, clients: int, delay: float
                       ) -> list[Phase]:
    name = f"benchgw-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "ORDERSTATS_BROKER": f"kafka://{broker}", "ORDERSTATS_APP_ID": name,
           "ORDERSTATS_ORDERS_TOPIC": f"{name}-orders", "ORDERSTATS_DLQ_TOPIC": f"{name}-dlq"}
    port = free_port()
    gw = Proc([ORDERSTATS, "gateway", "--port", str(port)], env, tmp / "gateway.log")
    url = f"http://127.0.0.1:{port}/orders"
    truth = GroundTruth(60)
    phases: list[Phase] = []
    workers: list[WorkerProcess] = []

    def worker(**extra: str) -> WorkerProcess:
        w = WorkerProcess({**env, **extra}, tmp / f"{name}-w", index=len(workers) + 1).start()
        workers.append(w)
        w.wait_ready(180)
        return w

    try:
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/ready"), 60, 0.2, "gateway ready")
        w = worker()
        n = 0
        for phase, note in (("(a) workers running", ""),
                            ("(b) workers stopped", "counted once workers run again"),
                            ("(c) workers slowed", f"{delay:g} s per batch")):
            if phase.startswith("(b)"):
                w.stop()
            if phase.startswith("(c)"):
                restarted = time.monotonic()
                w = worker(ORDERSTATS_TEST_BATCH_DELAY_S=str(delay))
                lag = asyncio.run(catch_up(w.url, truth, 300))
                phases[-1].note = (f"backlog counted exactly {time.monotonic() - restarted:.1f}"
                                   " s after the (slowed) worker was started again"
                                   if lag is not None else "backlog NOT exact after 300 s")
            result = asyncio.run(load(url, "gateway", phase, posts, clients, name, n, truth))
            result.note = note
            n += posts
            if phase.startswith("(a)"):
                lag = asyncio.run(catch_up(w.url, truth, 120))
                result.note = f"stats exact {lag:.1f} s after the last POST" if lag is not None \
                    else "stats NOT exact after 120 s"
            phases.append(result)
        lag_slow = asyncio.run(catch_up(w.url, truth, 300))
        phases[-1].note += (f"; stats exact {lag_slow:.1f} s after the last POST"
                            if lag_slow is not None else "; stats NOT exact after 300 s")
        w.stop()
        resumed = time.monotonic()
        w = worker()
        lag = asyncio.run(catch_up(w.url, truth, 300))
        phases.append(Phase("gateway", "workers resumed (normal)", note=(
            f"stats exact for all {truth.valid:,} accepted orders {time.monotonic() - resumed:.1f}"
            " s after the restart (incl. start-up)" if lag is not None else "NOT exact")))
    finally:
        for w in workers:
            if w.alive():
                w.stop()
        gw.stop()
    return phases


def run_sync_design(tmp: Path, posts: int, clients: int, delay: float) -> list[Phase]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "bench.gateway", "--sync-service", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    phases: list[Phase] = []

    def start(d: float) -> Proc:
        p = Proc(args + ["--delay", str(d)], env, tmp / "sync.log")
        wait_for(lambda: http_ok(url + "/health"), 30, 0.1, "sync service up")
        return p

    svc = start(0.0)
    try:
        n = 0
        a = asyncio.run(load(url + "/orders", "sync service", "(a) stats running", posts,
                             clients, "sync", n, None))
        phases.append(a)
        n += posts
        svc.stop()
        b = asyncio.run(load(url + "/orders", "sync service", "(b) stats stopped", posts,
                             clients, "sync", n, None))
        b.note = "every POST fails: the order path is down with the stats"
        phases.append(b)
        n += posts
        svc = start(delay)
        c = asyncio.run(load(url + "/orders", "sync service", "(c) stats slowed", posts,
                             clients, "sync", n, None))
        c.note = f"{delay:g} s per update: the POST waits for it"
        phases.append(c)
        before = stats_total(url)
        svc.stop()
        svc = start(0.0)
        after = stats_total(url)
        phases.append(Phase("sync service", "restarted", note=(
            f"{before:,} orders counted before the restart, {after:,} after: "
            f"{before - after:,} lost")))
    finally:
        svc.stop()
    return phases


def stats_total(url: str) -> int:
    import urllib.request
    with urllib.request.urlopen(url + "/stats", timeout=5) as resp:
        return orjson.loads(resp.read())["orders"]


def sync_service(port: int, delay: float) -> None:
    """The first design: POST validates and updates the counters, then answers."""
    from aiohttp import web

    from app.order import InvalidOrder, decode_order

    counts: dict[str, list[int]] = {}
    seen: set[str] = set()

    async def post(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            o = decode_order(raw, int(time.time() * 1000) + 7 * 86400_000)
        except InvalidOrder as exc:
            return web.json_response({"error": {"code": "invalid", "message": str(exc)}},
                                     status=400)
        if delay:
            await asyncio.sleep(delay)  # the stats store's write, slowed
        if o.order_id not in seen:
            seen.add(o.order_id)
            c = counts.setdefault(o.store_id, [0, 0])
            c[0] += 1
            c[1] += o.total
        return web.json_response({"accepted": [o.order_id]})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"orders": sum(c[0] for c in counts.values())})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/orders", post)
    app.router.add_get("/stats", stats)
    app.router.add_get("/health", health)
    import uvloop
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--broker", default=os.environ.get("ORDERSTATS_BROKER", "127.0.0.1:9092")
                    .replace("kafka://", ""))
    ap.add_argument("--posts", type=int, default=5000, help="POSTs per phase")
    ap.add_argument("--clients", type=int, default=16, help="concurrent clients")
    ap.add_argument("--delay", type=float, default=0.1,
                    help="the slowed stats side: seconds per batch (workers) / per update")
    ap.add_argument("--sync-service", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.broker = args.broker.replace("kafka://", "").split(";")[0]
    if args.sync_service:
        sync_service(args.port, args.delay)
        return
    tmp = ROOT / "bench-results" / f"gateway-{time.strftime('%Y%m%d-%H%M%S')}"
    tmp.mkdir(parents=True, exist_ok=True)
    print(f"gateway benchmark: {args.posts:,} POSTs per phase, {args.clients} clients, "
          f"broker {args.broker}; logs in {tmp}", file=sys.stderr, flush=True)
    phases = run_gateway_design(args.broker, tmp, args.posts, args.clients, args.delay)
    phases += run_sync_design(tmp, args.posts, args.clients, args.delay)
    table = "\n".join([
        "| design | phase | POSTs | ok | failed | p50 ms | p99 ms | ok/s | stats |",
        "|---|---|---|---|---|---|---|---|---|",
        *(p.row() for p in phases)])
    print(table)
    (ROOT / "bench-results" / "gateway.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
