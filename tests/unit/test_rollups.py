"""Hour and day rollups beside the base windows: keys, folding, retention, the API's sizes,
and their configuration. Expected bounds are written out by hand (or computed with zoneinfo
directly), not by the calendar under test."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from agents.retention import expired_windows
from app.order import Order
from app.settings import Settings, SettingsError
from app.web.params import ApiError
from app.web.window_view import WindowChoice
from app.window_config import window_config
from tables.fence import Applied, apply_batch, window_keys
from tables.values import ORDERS, WindowValue
from agents.rollups import rollups_of
from tables.windows import TumblingWindows

BASE = TumblingWindows(60, 86_400)


def rollups(tz="UTC", env=None):
    _base, config = window_config({"ORDERSTATS_TIMEZONE": tz, **(env or {})}, None)
    return rollups_of(config)


def ms(text: str, tz: str = "UTC") -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def order(n, t_ms, store="s-1", total=100, items=1):
    return Order(f"o-{n}", store, t_ms, items, total, "JPY")


def test_an_order_lands_in_its_minute_its_local_hour_and_its_local_day():
    r = rollups("Asia/Tokyo")
    t = ms("2026-11-23T08:59:30", "Asia/Tokyo")
    now = t + 60_000
    keys = window_keys([Applied(ORDERS, 1, order(1, t))], BASE, now - 86_400_000, r,
                       r.cutoffs(now))
    assert keys == {("s-1", t // 1000 - 30),
                    ("s-1", ms("2026-11-23T08:00:00", "Asia/Tokyo") // 1000, "1h"),
                    ("s-1", ms("2026-11-23T00:00:00", "Asia/Tokyo") // 1000, "1d")}


def test_rollups_are_fenced_per_key_and_take_orders_too_late_for_the_minutes():
    r = rollups()
    now = ms("2026-11-23T12:00:00")
    old = ms("2026-11-20T10:15:00")  # 3 days ago: late for the 1-day base retention
    fresh = ms("2026-11-23T11:59:00")
    batch = [Applied(ORDERS, 5, order(1, old, total=10)), Applied(ORDERS, 6, order(2, fresh))]
    cutoff = now - 86_400_000
    result = apply_batch(batch, {}, {}, BASE, cutoff, r, r.cutoffs(now))
    day_old = ("s-1", ms("2026-11-20T00:00:00") // 1000, "1d")
    assert result.windows[day_old] == WindowValue(1, {"JPY": 10}, 1, (5, -1))
    assert ("s-1", old // 1000 // 60 * 60) not in result.windows  # no minute window: late
    assert result.totals["s-1"].late == 1
    # Replayed with the stored values: nothing moves, in any size.
    again = apply_batch(batch, result.windows, result.totals, BASE, cutoff, r, r.cutoffs(now))
    assert again.windows == result.windows and again.replayed == 2


def test_berlin_days_last_23_and_25_hours_and_the_repeated_hour_is_two_windows():
    r = rollups("Europe/Berlin")
    spring = ms("2026-03-29T00:00:00", "Europe/Berlin") // 1000
    autumn = ms("2026-10-25T00:00:00", "Europe/Berlin") // 1000
    assert r.end_ms("1d", spring) - spring * 1000 == 23 * 3_600_000
    assert r.end_ms("1d", autumn) - autumn * 1000 == 25 * 3_600_000
    # 02:30 local happens twice on 2026-10-25: 00:30Z (CEST) and 01:30Z (CET).
    first, second = ms("2026-10-25T00:30:00"), ms("2026-10-25T01:30:00")
    now = second + 1000
    k1 = set(r.keys("s", first, r.cutoffs(now)))
    k2 = set(r.keys("s", second, r.cutoffs(now)))
    assert ("s", ms("2026-10-25T00:00:00") // 1000, "1h") in k1
    assert ("s", ms("2026-10-25T01:00:00") // 1000, "1h") in k2
    assert ("s", autumn, "1d") in k1 & k2


def test_each_size_expires_by_its_own_retention():
    r = rollups(env={"ORDERSTATS_ROLLUP_RETENTION": "1h=2d,1d=10d"})
    now = ms("2026-11-23T12:00:00")
    assert r.is_retained("1h", ms("2026-11-21T13:00:00") // 1000, now)
    assert not r.is_retained("1h", ms("2026-11-21T10:00:00") // 1000, now)
    assert r.is_retained("1d", ms("2026-11-14T00:00:00") // 1000, now)
    assert not r.is_retained("1d", ms("2026-11-12T00:00:00") // 1000, now)
    assert not r.is_retained("6h", ms("2026-11-23T00:00:00") // 1000, now)  # not configured


def test_the_retention_sweep_removes_old_rollups_and_keeps_young_ones():
    from types import SimpleNamespace

    r = rollups(env={"ORDERSTATS_ROLLUP_RETENTION": "1h=2d"})
    now = ms("2026-11-23T12:00:00")
    stored = [b'["s",%d,"1h"]' % (ms("2026-11-20T10:00:00") // 1000),
              b'["s",%d,"1h"]' % (ms("2026-11-23T10:00:00") // 1000),
              b'["s",%d,"1d"]' % (ms("2026-11-20T00:00:00") // 1000),
              b'["s",%d]' % (ms("2026-11-21T10:00:00") // 1000),
              b'["s",%d]' % (ms("2026-11-23T11:00:00") // 1000)]
    store = SimpleNamespace(raw_keys=lambda p, start=None: iter(sorted(stored)))
    state = SimpleNamespace(sweep_from=None, next_sweep=0.0)
    gone = expired_windows(store, 0, state, BASE, BASE.late_cutoff_ms(now), r, now)
    assert sorted(map(tuple, gone)) == sorted([
        ("s", ms("2026-11-20T10:00:00") // 1000, "1h"), ("s", ms("2026-11-21T10:00:00") // 1000)])


def test_the_api_picks_a_size_by_name_and_refuses_unknown_ones():
    choice = WindowChoice(BASE, rollups("Asia/Tokyo"))
    assert choice.pick(None).name == "1m" and choice.pick("").rollup is None
    hour = choice.pick("1h")
    assert hour.describe() == {"window": "1h", "window_size_s": 3600, "timezone": "Asia/Tokyo"}
    t = ms("2026-11-23T09:10:00", "Asia/Tokyo")
    assert hour.bounds(t) == (ms("2026-11-23T09:00:00", "Asia/Tokyo") // 1000,
                              ms("2026-11-23T10:00:00", "Asia/Tokyo") // 1000)
    day = choice.pick("1d")
    start, _ = day.bounds(t)
    assert day.previous_start(start) == ms("2026-11-22T00:00:00", "Asia/Tokyo") // 1000
    assert day.owns(["s", start, "1d"]) and not day.owns(["s", start])
    assert choice.base.owns(["s", start]) and not choice.base.owns(["s", start, "1h"])
    with pytest.raises(ApiError) as err:
        choice.pick("2h")
    assert err.value.status == 400 and "1m, 1h, 1d" in err.value.message


def test_window_settings_defaults_and_one_line_errors():
    s = Settings.from_env({})
    assert s.window_size_s == 60 and s.windows.names == ("1h", "1d")
    assert s.windows.timezone == "UTC" and s.windows.grace_s == 60
    assert Settings.from_env({"ORDERSTATS_WINDOWS": "5m,1h"}).window_size_s == 300
    assert Settings.from_env({"ORDERSTATS_WINDOWS": "1m"}).windows.names == ()
    assert Settings.from_env({"ORDERSTATS_WINDOW_SIZE_S": "7200"}).windows.names == ("1d",)
    for env, words in [({"ORDERSTATS_WINDOWS": "7m"}, "does not divide a day"),
                       ({"ORDERSTATS_TIMEZONE": "Mars/Olympus"}, "unknown time zone"),
                       ({"ORDERSTATS_ROLLUP_RETENTION": "1h=30m"}, "at least one window"),
                       ({"ORDERSTATS_ROLLUP_RETENTION": "1h"}, "SIZE=DURATION"),
                       ({"ORDERSTATS_GRACE_S": "-1"}, "ORDERSTATS_GRACE_S"),
                       ({"ORDERSTATS_WINDOWS": "1m,1h", "ORDERSTATS_WINDOW_SIZE_S": "30"},
                        "set one of them")]:
        with pytest.raises(SettingsError, match=words):
            Settings.from_env(env)
