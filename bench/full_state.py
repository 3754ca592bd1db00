"""The full-size steady state: 100,000 stores x 24 h of 60 s windows on a worker's disk.

A day of orders for every store in every minute is 144 M orders, a day of this machine's
time through Kafka. So a small pass through Kafka builds the worker's partitions (RocksDB,
changelog offsets, progress with a confirmed close time), and then the day of windows is
written straight into each partition's windows RocksDB, in the worker's own encoding
(tables.keys, tables.values), as windows closed and already published: one SST file per
partition, ingested. The worker then starts on that state as after any restart. Measured:
the time to ready, RSS while answering queries and while counting live orders, the state
on disk. (The windows are not in the changelog: this is a local-state restart, not a
restore.)
"""

from __future__ import annotations

import random
import shutil
import time
import uuid
from pathlib import Path

import orjson
import rocksdict

from agents.routing import KeyRouting
from bench.dataset import produce_dataset
from bench.phases import serve_queries, worker_env
from tables import keys
from tables.values import Progress, WindowValue
from tests.worker_process import PeakRss, WorkerProcess, http_json, wait_for

PARTITIONS = 8
MINUTE_S, HOUR_S = 60, 3600


def _db_path(data_dir: Path, table: str, partition: int) -> Path:
    found = list(data_dir.rglob(f"{table}-{partition}.db"))
    if len(found) != 1:
        raise RuntimeError(f"expected one {table}-{partition}.db under {data_dir}: {found}")
    return found[0]


def _confirmed_ms(data_dir: Path, partition: int) -> int:
    db = rocksdict.Rdict(str(_db_path(data_dir, "progress", partition)),
                         rocksdict.Options(raw_mode=True))
    try:
        raw = db.get(keys.encode(partition))
    finally:
        db.close()
    if raw is None:
        raise RuntimeError(f"partition {partition} has no progress record")
    return Progress.load(orjson.loads(raw)).results_confirmed_ms


def _write_day(data_dir: Path, partition: int, stores: list[str], first_minute_s: int,
               minutes: int, closed_at_ms: int, seed: int) -> int:
    """One SST of the partition's stores' day (minutes, hours, the days), ingested."""
    rng = random.Random(seed)
    # The hours and days that ended with the last minute: the current ones are still open
    # (the live orders open them), as they would be after a real day of orders.
    end = first_minute_s + minutes * MINUTE_S
    first_hour = first_minute_s // HOUR_S * HOUR_S
    hours = range(first_hour, end // HOUR_S * HOUR_S - HOUR_S + 1, HOUR_S)
    days = range(first_minute_s // 86_400 * 86_400, end // 86_400 * 86_400 - 86_400 + 1,
                 86_400)
    sst = data_dir.parent / f"{data_dir.name}-day-{partition}.sst"
    writer = rocksdict.SstFileWriter(rocksdict.Options(raw_mode=True))
    writer.open(str(sst))
    written = 0
    for store in sorted(stores, key=keys.store_windows_prefix):
        day = []
        for m in range(minutes):
            n = rng.randint(1, 6)
            value = WindowValue(n, {"EUR": n * 1_999}, n * 2, (-1, -1), 1, closed_at_ms)
            day.append((keys.encode(keys.window_key(store, first_minute_s + m * MINUTE_S)),
                        value))
        for size, starts, span in (("1h", hours, 60), ("1d", days, 1440)):
            for start in starts:
                value = WindowValue(span, {"EUR": span * 1_999}, span * 2, (-1, -1), 1,
                                    closed_at_ms)
                day.append((keys.encode(keys.window_key(store, start, size)), value))
        day.sort(key=lambda kv: kv[0])
        for raw_key, value in day:
            writer[raw_key] = keys.dumps(value.dump())
        written += len(day)
    writer.finish()
    db = rocksdict.Rdict(str(_db_path(data_dir, "windows", partition)),
                         rocksdict.Options(raw_mode=True))
    try:
        db.ingest_external_file([str(sst)])
    finally:
        db.close()
    sst.unlink()
    return written


def full_steady(broker: str, work: Path, stores: int = 100_000, hours: int = 24,
                live_orders: int = 30_000) -> dict:

    name = f"bench-full-{uuid.uuid4().hex[:6]}"
    env = {**worker_env(broker, name, name), "ORDERSTATS_GRACE_S": "5"}
    data_dir = work / name
    print(f"  full steady state: a first pass of {stores:,} orders through Kafka...",
          flush=True)
    produce_dataset(broker, name, stores, stores, seed=19, span_s=600)
    worker = WorkerProcess(env, data_dir).start("warn")
    worker.wait_ready()
    wait_for(lambda: worker.counted() >= stores, 900, 0.5, "the first pass")
    wait_for(lambda: worker.metric("orderstats_window_results_total") > 0, 120, 0.5,
             "the first closes")
    time.sleep(3)
    worker.stop()

    routing = KeyRouting("raw", PARTITIONS)
    ids = [f"s-{i:04d}" for i in range(stores)]
    by_partition: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    for store in ids:
        by_partition[routing.partition(store)].append(store)
    now_s = int(time.time())
    minutes = hours * 60
    first_minute = (now_s - 900) // MINUTE_S * MINUTE_S - minutes * MINUTE_S  # before the pass
    started = time.monotonic()
    written = 0
    for p in range(PARTITIONS):
        confirmed = _confirmed_ms(data_dir, p)
        if confirmed <= 0:
            raise RuntimeError(f"partition {p}: no close confirmed after the first pass")
        written += _write_day(data_dir, p, by_partition[p], first_minute, minutes, confirmed,
                              seed=p)
        print(f"    partition {p}: {written:,} windows written "
              f"({time.monotonic() - started:.0f} s)", flush=True)
    out: dict = {"stores": stores, "hours": hours, "windows_written": written,
                 "write_s": round(time.monotonic() - started, 1),
                 "state_on_disk_mb": round(sum(f.stat().st_size for f in data_dir.rglob("*")
                                               if f.is_file()) / 2**20, 1)}

    worker = WorkerProcess(env, data_dir).start("info")  # its scan times are logged
    rss = PeakRss(worker.proc.pid)
    started = time.monotonic()
    out["ready_s"] = round(worker.wait_ready(timeout=1800), 1)

    def scans() -> list[str]:
        return [line.split("] ", 3)[-1].strip() for line in
                worker.log_path.read_text(errors="replace").splitlines()
                if "windows scanned" in line]

    # Live orders while the partitions' windows are still being scanned: counted at once.
    before = worker.counted()
    produce_dataset(broker, name, live_orders, stores, seed=23, span_s=60)
    wait_for(lambda: worker.counted() >= before + live_orders, 900, 0.5, "the live orders")
    out["live_orders"] = live_orders
    out["live_counted_s_after_start"] = round(time.monotonic() - started, 1)
    out["scans_done_when_counted"] = len(scans())
    out["rss_mb_serving_while_scanning"] = serve_queries(worker, stores, seconds=30)
    wait_for(lambda: len(scans()) >= PARTITIONS, 1800, 1, "the window scans")
    out["scans_done_s_after_start"] = round(time.monotonic() - started, 1)
    out["rss_mb_serving"] = serve_queries(worker, stores, seconds=30)
    out["peak_rss_mb"] = round(rss.stop(), 1)
    out["window_scans"] = scans()
    worker.stop()
    shutil.rmtree(data_dir, ignore_errors=True)
    print(f"  full steady state: {out}", flush=True)
    return out


if __name__ == "__main__":
    import sys
    print(orjson.dumps(full_steady(sys.argv[1], Path(sys.argv[2])), option=orjson.OPT_INDENT_2)
          .decode())
