"""Hour and day windows in the shop's time zone on a real broker, checked window by window.

Orders are produced with aiokafka (not the project's producer) across Berlin's two DST days
of 2026 and the last day in Tokyo; the expected windows are computed here with zoneinfo
directly, so the check does not lean on the calendar it checks.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests.integration.test_any_key import send_all
from tests.support import Deployment, http_json, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def local_windows(t_ms: int, zone: ZoneInfo) -> dict[str, tuple[int, int]]:
    """{"1h": (start_s, end_s), "1d": (...)} of the instant ``t_ms`` in ``zone``."""
    local = datetime.fromtimestamp(t_ms / 1000, zone)
    hour = local.replace(minute=0, second=0, microsecond=0)  # keeps the fold: 02:00 twice
    hour_s = int(hour.timestamp())
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
    next_midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(),
                                     tzinfo=zone)
    return {"1h": (hour_s, hour_s + 3600),
            "1d": (int(midnight.timestamp()), int(next_midnight.timestamp()))}


def iso(s: int) -> str:
    return datetime.fromtimestamp(s, ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("tz,days", [
    ("Europe/Berlin", ["2026-03-28", "2026-03-29", "2026-10-24", "2026-10-25", "2026-10-26"]),
    ("Asia/Tokyo", []),
])
def test_hour_and_day_windows_in_the_shop_time_zone_are_exact(kafka: str, tmp_path, tz, days):
    zone = ZoneInfo(tz)
    dep = Deployment(kafka, tmp_path, partitions=4)
    rng = random.Random(tz)
    now = int(time.time() * 1000)
    instants = [now - rng.randrange(36 * 3_600_000) for _ in range(1_500)]
    for day in days:  # whole local days, the DST ones included, every hour of them
        start = int(datetime.fromisoformat(day).replace(tzinfo=zone).timestamp() * 1000)
        instants += [start + rng.randrange(25 * 3_600_000) for _ in range(400)]
    expected: dict[tuple[str, str, int], list[int]] = {}
    records = []
    for n, t in enumerate(instants):
        store = f"s-{rng.randrange(6)}"
        total = rng.randrange(100, 10_000)
        records.append((store.encode(), orjson.dumps(
            {"order_id": f"o-{n}", "store_id": store,
             "created_at": datetime.fromtimestamp(t / 1000, ZoneInfo("UTC")).isoformat(),
             "items": [{"sku": "A", "qty": 1, "unit_price": total}], "total": total,
             "currency": "EUR"}), None))
        for size, (start, end) in local_windows(t, zone).items():
            w = expected.setdefault((store, size, start), [0, 0, end])
            w[0] += 1
            w[1] += total
    asyncio.run(send_all(dep.broker, dep.topic, records))
    worker = dep.worker(1, ORDERSTATS_TIMEZONE=tz, ORDERSTATS_ROLLUP_RETENTION="1h=400d,1d=400d")
    try:
        worker.wait_ready(180)
        stores = sorted({k[0] for k in expected})

        def counted() -> bool:
            total = 0
            for s in stores:
                status, body = http_json(f"{worker.url}/api/stores/{s}?limit=0")
                total += body["totals"]["orders"] if status == 200 else 0
            return total == len(records)

        wait_for(counted, 120, 1, "every order counted")
        lo, hi = iso(min(instants) // 1000 - 2 * 86_400), iso(now // 1000 + 86_400)
        for size in ("1h", "1d"):
            got: dict[tuple[str, str, int], list[int]] = {}
            for s in stores:
                status, body = http_json(f"{worker.url}/api/stores/{quote(s)}/windows?"
                                         f"window={size}&from={lo}&to={hi}")
                assert status == 200, body
                assert body["window"] == size and body["timezone"] == tz
                for w in body["windows"]:
                    start = int(datetime.fromisoformat(w["start"].replace("Z", "+00:00"))
                                .timestamp())
                    end = int(datetime.fromisoformat(w["end"].replace("Z", "+00:00"))
                              .timestamp())
                    got[(s, size, start)] = [w["orders"], w["revenue"], end]
            want = {k: v for k, v in expected.items() if k[1] == size}
            assert got == want, sorted(set(got.items()) ^ set(
                (k, tuple(v)) for k, v in want.items()))[:5]
        if days:  # 23- and 25-hour days are there, with those lengths
            lengths = {(v[2] - k[2]) // 3600 for k, v in expected.items() if k[1] == "1d"}
            assert {23, 24, 25} <= lengths
        # The single-store answer carries "this hour" and "today" beside the minute.
        status, body = http_json(f"{worker.url}/api/stores/{stores[0]}")
        assert status == 200 and set(body["current_by_window"]) == {"1h", "1d"}
        hour_now = local_windows(int(time.time() * 1000), zone)["1h"]
        assert body["current_by_window"]["1h"]["start"] == iso(hour_now[0])
        status, body = http_json(f"{worker.url}/api/stores?window=1d&limit=3")
        assert status == 200 and body["window"] == "1d" and body["count"] == len(stores)
        status, body = http_json(f"{worker.url}/api/stores?window=3h")
        assert status == 400 and body["error"]["code"] == "bad_parameter"
    finally:
        worker.stop()
