"""Window sizes and their boundaries in a time zone (app/calendar.py)."""

import random
from datetime import date, datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.timefmt import parse_iso_ms
from app.calendar import Calendar, WindowSize, parse_window_sizes
from tables.windows import TumblingWindows

M1, H1, D1 = parse_window_sizes("1m,1h,1d")
H_MS, DAY_MS = 3_600_000, 86_400_000
Y2026, Y2028 = parse_iso_ms("2026-01-01T00:00:00Z"), parse_iso_ms("2028-01-01T00:00:00Z")


def utc(text: str) -> int:
    return parse_iso_ms(text)


# -- parsing ------------------------------------------------------------------------------

def test_sizes_parse_smallest_first_with_canonical_names():
    sizes = parse_window_sizes(" 1d, 30s,1h ,5m,15m,6h,1m")
    assert [s.name for s in sizes] == ["30s", "1m", "5m", "15m", "1h", "6h", "1d"]
    assert [s.seconds for s in sizes] == [30, 60, 300, 900, 3600, 21600, 86400]
    assert [s.is_calendar_day for s in sizes] == [False] * 6 + [True]
    assert parse_window_sizes("60m,24h,90s") == (WindowSize("90s", 90, False),
                                                WindowSize("1h", 3600, False),
                                                WindowSize("1d", 86400, True))


@pytest.mark.parametrize("text, bad", [
    ("1m,7m", "'7m'"), ("1m,2d", "'2d'"), ("1m,,1h", "''"), ("1m,1w", "'1w'"),
    ("1m,0s", "'0s'"), ("1m,-1m", "'-1m'"), ("1m,1.5h", "'1.5h'"), ("1M", "'1M'"),
    ("1h,60m", "'60m'"), ("1d,1d", "'1d'"), ("5m,25h", "'25h'"),
])
def test_bad_sizes_are_refused_naming_the_item(text, bad):
    with pytest.raises(ValueError, match=bad):
        parse_window_sizes(text)


def test_an_empty_list_is_refused():
    with pytest.raises(ValueError, match="empty"):
        parse_window_sizes("  ")


def test_a_size_cannot_be_built_inconsistent():
    with pytest.raises(ValueError, match="name"):
        WindowSize("60m", 3600, False)
    with pytest.raises(ValueError, match="is_calendar_day"):
        WindowSize("1d", 86400, False)
    with pytest.raises(ValueError, match="divide"):
        WindowSize("7m", 420, False)


def test_an_unknown_zone_is_refused_naming_it():
    with pytest.raises(ValueError, match="Mars/Olympus"):
        Calendar("Mars/Olympus")


# -- the boundaries -----------------------------------------------------------------------

def test_utc_minutes_and_hours_are_exactly_todays_tumbling_windows():
    rng = random.Random(13)
    cal = Calendar("UTC")
    for size_s, size, n in ((60, M1, 20_000), (3600, H1, 1_000)):  # each hour: a new day
        windows = TumblingWindows(size_s, size_s)
        for _ in range(n):
            t = rng.randrange(parse_iso_ms("2000-01-01T00:00:00Z"), Y2028)
            start_s = windows.start_s(t)
            assert cal.bounds(size, t) == (start_s * 1000, (start_s + size_s) * 1000)


def test_sub_hour_sizes_stay_on_epoch_multiples_in_any_zone():
    t = utc("2026-11-23T10:07:31.250Z")
    for zone in ("Asia/Kathmandu", "Asia/Kolkata", "America/New_York"):
        assert Calendar(zone).bounds(M1, t) == (utc("2026-11-23T10:07:00Z"),
                                                utc("2026-11-23T10:08:00Z"))


def test_a_tokyo_day_starts_at_15z_the_day_before():
    cal = Calendar("Asia/Tokyo")
    assert cal.bounds(D1, utc("2026-11-23T10:00:00Z")) == (utc("2026-11-22T15:00:00Z"),
                                                           utc("2026-11-23T15:00:00Z"))
    start, _ = cal.bounds(D1, utc("2026-11-23T15:00:00Z"))
    assert start == utc("2026-11-23T15:00:00Z")
    assert cal.local_label(D1, start) == "2026-11-24"
    assert cal.bounds(H1, utc("2026-11-23T10:59:59.999Z")) == (utc("2026-11-23T10:00:00Z"),
                                                               utc("2026-11-23T11:00:00Z"))


@pytest.mark.parametrize("zone, day, start, hours", [
    ("Europe/Berlin", "2026-03-29", "2026-03-28T23:00:00Z", 23),
    ("Europe/Berlin", "2026-10-25", "2026-10-24T22:00:00Z", 25),
    ("Europe/Berlin", "2026-10-26", "2026-10-25T23:00:00Z", 24),
    ("America/New_York", "2026-03-08", "2026-03-08T05:00:00Z", 23),
    ("America/New_York", "2026-11-01", "2026-11-01T04:00:00Z", 25),
    ("America/Havana", "2026-03-08", "2026-03-08T05:00:00Z", 23),  # midnight skipped
    ("America/Havana", "2026-11-01", "2026-11-01T04:00:00Z", 25),  # midnight repeated
    ("America/Santiago", "2026-09-06", "2026-09-06T04:00:00Z", 23),  # midnight skipped
])
def test_days_follow_the_local_calendar_across_dst(zone, day, start, hours):
    cal = Calendar(zone)
    lo = utc(start)
    for t in (lo, lo + 1, lo + hours * H_MS // 2, lo + hours * H_MS - 1):
        assert cal.bounds(D1, t) == (lo, lo + hours * H_MS)
    assert cal.local_label(D1, lo) == day
    assert cal.day_start_ms(date.fromisoformat(day)) == lo


def test_a_skipped_midnight_starts_the_day_at_the_first_instant_of_that_date():
    cal = Calendar("America/Havana")
    start, _ = cal.bounds(D1, utc("2026-03-08T12:00:00Z"))
    assert cal.local_label(H1, start) == "2026-03-08T01:00:00-04:00"
    assert cal.bounds(D1, start - 1)[1] == start  # 2026-03-07 ends where 03-08 begins


def test_berlin_hours_across_the_changes_are_real_hours_at_local_full_hours():
    cal = Calendar("Europe/Berlin")
    # Spring: 01:00 CET is followed by 03:00 CEST, one hour later.
    lo, hi = cal.bounds(H1, utc("2026-03-29T00:30:00Z"))
    assert (lo, hi) == (utc("2026-03-29T00:00:00Z"), utc("2026-03-29T01:00:00Z"))
    assert cal.local_label(H1, hi) == "2026-03-29T03:00:00+02:00"
    # Autumn: 02:00 comes twice, once per offset: two windows, told apart by the label.
    first = cal.bounds(H1, utc("2026-10-25T00:30:00Z"))
    second = cal.bounds(H1, utc("2026-10-25T01:30:00Z"))
    assert first == (utc("2026-10-25T00:00:00Z"), utc("2026-10-25T01:00:00Z"))
    assert second == (utc("2026-10-25T01:00:00Z"), utc("2026-10-25T02:00:00Z"))
    assert cal.local_label(H1, first[0]) == "2026-10-25T02:00:00+02:00"
    assert cal.local_label(H1, second[0]) == "2026-10-25T02:00:00+01:00"


def test_six_hour_windows_absorb_the_dst_hour_and_never_span_two_days():
    cal = Calendar("Europe/Berlin")
    (six,) = parse_window_sizes("6h")
    assert cal.bounds(six, utc("2026-03-29T02:00:00Z")) == (utc("2026-03-28T23:00:00Z"),
                                                            utc("2026-03-29T04:00:00Z"))
    assert cal.bounds(six, utc("2026-10-25T02:00:00Z")) == (utc("2026-10-24T22:00:00Z"),
                                                            utc("2026-10-25T05:00:00Z"))
    assert cal.bounds(six, utc("2026-10-25T22:59:59Z"))[1] == utc("2026-10-25T23:00:00Z")


@pytest.mark.parametrize("zone, start", [("Asia/Kolkata", "2026-11-23T09:30:00Z"),
                                         ("Asia/Kathmandu", "2026-11-23T09:15:00Z")])
def test_hours_in_half_and_quarter_hour_zones_start_at_local_full_hours(zone, start):
    cal = Calendar(zone)
    lo, hi = cal.bounds(H1, utc("2026-11-23T10:00:00Z"))
    assert (lo, hi) == (utc(start), utc(start) + H_MS)
    assert cal.local_label(H1, lo).startswith("2026-11-23T15:00:00+05:")


def test_labels_of_minutes_carry_the_zone_offset():
    assert Calendar("Asia/Tokyo").local_label(M1, utc("2026-11-23T10:07:00Z")) \
        == "2026-11-23T19:07:00+09:00"
    assert Calendar("UTC").local_label(D1, utc("2026-11-23T00:00:00Z")) == "2026-11-23"


def test_cached_answers_do_not_leak_between_sizes_or_days():
    cal = Calendar("Europe/Berlin")
    t = utc("2026-10-25T12:34:56Z")
    assert cal.bounds(D1, t)[1] - cal.bounds(D1, t)[0] == 25 * H_MS
    assert cal.bounds(H1, t) == (utc("2026-10-25T12:00:00Z"), utc("2026-10-25T13:00:00Z"))
    assert cal.bounds(D1, t + DAY_MS) == (utc("2026-10-25T23:00:00Z"),
                                          utc("2026-10-26T23:00:00Z"))
    assert cal.bounds(D1, t) == (utc("2026-10-24T22:00:00Z"), utc("2026-10-25T23:00:00Z"))
    assert cal.bounds(M1, t) == (utc("2026-10-25T12:34:00Z"), utc("2026-10-25T12:35:00Z"))


# -- properties: every instant lies in its window; windows tile time ----------------------

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Asia/Kathmandu",
         "America/Havana", "Australia/Lord_Howe", "UTC"]
SIZES = parse_window_sizes("30s,1m,15m,1h,6h,1d") + parse_window_sizes("45m,90m")
CALENDARS = {zone: Calendar(zone) for zone in ZONES}


@settings(max_examples=600, deadline=None)
@given(zone=st.sampled_from(ZONES), size=st.sampled_from(SIZES),
       t=st.integers(Y2026, Y2028 - 1))
def test_every_instant_lies_in_its_window_and_its_neighbours_touch_it(zone, size, t):
    cal = CALENDARS[zone]
    lo, hi = cal.bounds(size, t)
    assert lo <= t < hi
    assert lo % 1000 == 0 and hi % 1000 == 0
    assert cal.bounds(size, lo) == (lo, hi) and cal.bounds(size, hi - 1) == (lo, hi)
    assert cal.bounds(size, lo - 1)[1] == lo and cal.bounds(size, hi)[0] == hi
    if size.is_calendar_day:
        assert hi - lo in (23 * H_MS, 24 * H_MS, 25 * H_MS) or zone == "Australia/Lord_Howe"
        local = datetime.fromtimestamp(lo / 1000, cal.zone)
        assert local.date().isoformat() == cal.local_label(size, lo)
    elif not size.epoch_aligned:
        assert 0 < hi - lo <= size.seconds * 1000 + H_MS


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize("size", [H1, D1], ids=["1h", "1d"])
def test_windows_tile_2026_and_2027_without_gap_or_overlap(zone, size):
    cal = Calendar(zone)
    t, lengths = cal.bounds(size, Y2026)[0], set()
    while t < Y2028:
        lo, hi = cal.bounds(size, t)
        assert lo == t and hi > lo
        lengths.add(hi - lo)
        if not size.is_calendar_day:  # every hour window starts at a local full hour
            assert datetime.fromtimestamp(lo / 1000, cal.zone).minute == 0
        t = hi
    assert lengths == ({H_MS} if size is H1 else {23 * H_MS, 24 * H_MS, 25 * H_MS})


def test_a_day_starts_at_local_midnight_where_midnight_exists():
    cal = Calendar("Europe/Berlin")
    for month in range(1, 13):
        lo, _ = cal.bounds(D1, utc(f"2027-{month:02d}-15T12:00:00Z"))
        local = datetime.fromtimestamp(lo / 1000, cal.zone)
        assert (local.day, local.hour, local.minute) == (15, 0, 0)
        assert datetime.fromtimestamp(lo / 1000, timezone.utc).hour in (22, 23)
