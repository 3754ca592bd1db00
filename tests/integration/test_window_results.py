"""Closed windows published to ``APP_ID-window-results``, read back with kcat (a Kafka client
this project did not write) and checked window by window against a truth computed here.

One run covers both close rules, orders that arrive after their window closed, a kill -9
and a replay; a second run shows the watermark rule alone, with orders in the future (the
wall clock can never close those windows).
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

import orjson
import pytest

from tests.integration.test_any_key import send_all
from tests.support import Deployment, http_json, wait_for
from app.kafka.clients import bootstrap_servers

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

MIN_MS = 60_000
GRACE_S = 2


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def order(n: int, store: str, t_ms: int, total: int) -> tuple[bytes, bytes, None]:
    return (store.encode(), orjson.dumps(
        {"order_id": f"o-{n}", "store_id": store,
         "created_at": datetime.fromtimestamp(t_ms / 1000, timezone.utc).isoformat(),
         "items": [{"sku": "A", "qty": 2, "unit_price": total // 2}], "total": total // 2 * 2,
         "currency": "EUR"}), None)


class Truth:
    """Expected figures per (store, size, start ISO) for UTC minutes, hours and days."""

    def __init__(self) -> None:
        self.windows: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.ends: dict[tuple[str, str, str], int] = {}

    def add(self, store: str, t_ms: int, total: int) -> None:
        for size, ms in (("1m", MIN_MS), ("1h", 3_600_000), ("1d", 86_400_000)):
            start = t_ms // ms * ms
            key = (store, size, iso(start))
            w = self.windows.setdefault(key, {"orders": 0, "revenue": {"EUR": 0}, "items": 0})
            w["orders"] += 1
            w["revenue"]["EUR"] += total // 2 * 2
            w["items"] += 2
            self.ends[key] = start + ms


def kcat_results(dep: Deployment) -> list[tuple[int, int, tuple, dict, bytes]]:
    """Every record of the results topic: (partition, offset, key, value, raw value)."""
    topic = f"orderstats-{dep.name}-window-results"
    proc = subprocess.run(
        ["kcat", "-b", bootstrap_servers(dep.broker), "-C", "-t", topic, "-o", "beginning",
         "-e", "-q", "-f", "%p\t%o\t%k\t%s\n"], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    out = []
    for line in proc.stdout.splitlines():
        if not line.strip():
            continue
        p, o, k, v = line.split(b"\t", 3)
        out.append((int(p), int(o), tuple(orjson.loads(k)), orjson.loads(v), v))
    return out


def latest(records: list) -> dict[tuple, dict]:
    """What a compacted read holds: the last record of each key."""
    last: dict[tuple, tuple] = {}
    for p, o, key, value, _raw in records:
        if key not in last or (p, o) > last[key][0]:
            last[key] = ((p, o), value)
    return {key: value for key, (_po, value) in last.items()}


def check_revisions(records: list) -> None:
    """Per key, in log order: revisions never go down; one revision, one value."""
    seen: dict[tuple, tuple[int, bytes]] = {}
    by_revision: dict[tuple, bytes] = {}
    for p, o, key, value, raw in sorted(records, key=lambda r: (r[0], r[1])):
        rev = value["revision"]
        if key in seen:
            assert rev >= seen[key][0], f"{key}: revision {rev} after {seen[key][0]}"
        seen[key] = (rev, raw)
        first = by_revision.setdefault((*key, rev), raw)
        assert first == raw, f"{key} revision {rev} published with two values: {first} {raw}"


def counted(worker, stores, want: int) -> bool:
    total = 0
    for s in stores:
        status, body = http_json(f"{worker.url}/api/stores/{s}?limit=0")
        total += body["totals"]["orders"] if status == 200 else 0
    return total == want


def test_closed_windows_reach_the_compacted_topic_exactly_through_late_orders_kill_and_replay(
        kafka: str, tmp_path):
    dep = Deployment(kafka, tmp_path, partitions=4)
    rng = random.Random(13)
    now = int(time.time() * 1000)
    truth = Truth()
    stores = [f"s-{i}" for i in range(12)]
    # Orders from 30 to 3 minutes ago: the minute windows all end in the past. The minute
    # of the newest order can only close by the idle rule (no later order moves the
    # watermark past it).
    first, records = [], []
    newest = ("s-0", now - 3 * MIN_MS)
    for n in range(2_000):
        store = rng.choice(stores)
        t = now - 30 * MIN_MS + rng.randrange(27 * MIN_MS - 1000)
        if n == 0:
            store, t = newest
        total = rng.randrange(100, 5_000)
        truth.add(store, t, total)
        first.append(order(n, store, t, total))
    asyncio.run(send_all(dep.broker, dep.topic, first))
    worker = dep.worker(1, ORDERSTATS_GRACE_S=str(GRACE_S))
    try:
        worker.wait_ready(180)
        wait_for(lambda: counted(worker, stores, len(first)), 120, what="all orders counted")
        minute_keys = {k for k in truth.windows if k[1] == "1m"}
        wait_for(lambda: minute_keys <= set(latest(kcat_results(dep))), 60,
                 what="every minute window published")
        newest_key = (newest[0], "1m", iso(newest[1] // MIN_MS * MIN_MS))
        assert latest(kcat_results(dep))[newest_key]["revision"] == 1  # the idle rule

        # Late orders: into minutes that are closed and published already.
        late = []
        closed = sorted({(k[0], k[2]) for k in minute_keys})
        for n in range(2_000, 2_300):
            # into a minute that has orders already (a closed window, not a new one)
            store, start = rng.choice(closed)
            t = int(datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp() * 1000) \
                + rng.randrange(MIN_MS)
            total = rng.randrange(100, 5_000)
            truth.add(store, t, total)
            late.append(order(n, store, t, total))
        asyncio.run(send_all(dep.broker, dep.topic, late[:150]))
        wait_for(lambda: counted(worker, stores, len(first) + 150), 60, what="late orders")
        wait_for(lambda: worker.labelled("orderstats_orders_after_close_total",
                                         window="1m") == 150, 30, what="after-close metric")
        asyncio.run(send_all(dep.broker, dep.topic, late[150:]))
        time.sleep(0.3)
        worker.kill()  # kill -9, probably mid-batch
        worker = dep.worker(1, ORDERSTATS_GRACE_S=str(GRACE_S))
        worker.wait_ready(180)
        wait_for(lambda: counted(worker, stores, len(first) + len(late)), 120,
                 what="counted after the kill")
        worker.stop()
        # A replay from the start: nothing changes, so nothing new is published but the
        # same records again at most.
        wait_for(lambda: dep.try_run("replay", "--to-earliest").returncode == 0, 120,
                 what="replay")
        worker = dep.worker(1, ORDERSTATS_GRACE_S=str(GRACE_S))
        worker.wait_ready(180)
        wait_for(lambda: worker.metric("orderstats_events_total") >= len(first) + len(late),
                 120, what="the replay read")
        time.sleep(2 * GRACE_S + 2)

        def exact() -> list[str]:
            records = kcat_results(dep)
            check_revisions(records)
            got = latest(records)
            wrong = []
            for key, value in got.items():
                figures = {f: value[f] for f in ("orders", "revenue", "items")}
                if truth.windows.get(key) != figures:
                    wrong.append(f"{key}: {figures} != {truth.windows.get(key)}")
            closable = time.time() * 1000 - GRACE_S * 1000 - 1000
            wrong += [f"{key} not published" for key, end in truth.ends.items()
                      if end <= closable and key not in got]
            return wrong

        wait_for(lambda: not exact(), 60, what="the latest revision of every window is exact")
        records = kcat_results(dep)
        assert max(v["revision"] for _p, _o, _k, v, _r in records) >= 2
        open_now = [k for k, end in truth.ends.items() if end > time.time() * 1000]
        assert open_now and not set(open_now) & set(latest(records))  # open ones unpublished
    finally:
        dep.cleanup()


def test_the_watermark_alone_closes_windows_the_wall_clock_has_not_reached(kafka: str, tmp_path):
    dep = Deployment(kafka, tmp_path, partitions=1)
    base = (int(time.time() * 1000) + 86_400_000) // MIN_MS * MIN_MS  # tomorrow
    truth = Truth()
    records = []
    later = base + MIN_MS + GRACE_S * 1000 + 500  # moves each store's watermark past the first
    for n, (store, t) in enumerate([("s-a", base + 1_000), ("s-b", base + 30_000),
                                    ("s-a", base + 59_000), ("s-a", later), ("s-b", later)]):
        truth.add(store, t, 1_000)
        records.append(order(n, store, t, 1_000))
    asyncio.run(send_all(dep.broker, dep.topic, records))
    worker = dep.worker(1, ORDERSTATS_GRACE_S=str(GRACE_S), ORDERSTATS_WINDOWS="1m")
    try:
        worker.wait_ready(180)
        wait_for(lambda: counted(worker, ["s-a", "s-b"], 5), 60, what="counted")
        want = {("s-a", "1m", iso(base)), ("s-b", "1m", iso(base))}
        wait_for(lambda: set(latest(kcat_results(dep))) == want, 30, what="first minute closed")
        time.sleep(2 * GRACE_S)
        got = latest(kcat_results(dep))
        assert set(got) == want  # the minute of the last order stays open
        for key in want:
            assert {f: got[key][f] for f in ("orders", "revenue", "items")} == truth.windows[key]
            assert got[key]["revision"] == 1 and got[key]["end"] == iso(base + MIN_MS)
    finally:
        dep.cleanup()
