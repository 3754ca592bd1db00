"""Closing windows (tables/closing.py): the two close rules, re-closing after a late order,
what a restart publishes again, and the published record's bytes."""

import orjson
import pytest

from tables.closing import (OpenWindows, WindowResult, close_limit, encode_result, reclosed,
                            result_key, unconfirmed)
from tables.values import WindowValue

MIN = 60_000
T0 = 1_794_970_800_000  # 2026-11-18T03:00:00Z
GRACE = 60_000


def _open(*ends: int) -> OpenWindows:
    windows = OpenWindows()
    for i, end in enumerate(ends):
        windows.add(("s-%d" % i, (end - MIN) // 1000), end)
    return windows


def test_the_watermark_closes_a_window_once_it_passes_end_plus_grace():
    windows = _open(T0 + MIN, T0 + 2 * MIN)
    busy = T0 + 10 * MIN  # an event just now: not idle, so the wall clock does not count
    assert windows.due(close_limit(T0 + MIN + GRACE - 1, T0 + 10 * MIN, busy, GRACE)) == []
    assert windows.due(close_limit(T0 + MIN + GRACE, T0 + 10 * MIN, busy, GRACE)) == [
        ("s-0", (T0) // 1000)]
    assert len(windows) == 1 and windows.next_end() == T0 + 2 * MIN


def test_the_wall_clock_closes_the_last_window_of_an_idle_partition():
    windows = _open(T0 + MIN)
    watermark = T0 + 30_000  # the last order, in the window; nothing comes after it
    last_event = T0 + 31_000
    # wall clock past end + grace, but the partition received an event less than grace ago
    assert windows.due(close_limit(watermark, T0 + MIN + GRACE, T0 + MIN + 1, GRACE)) == []
    # idle for grace, but the wall clock not yet past end + grace
    assert windows.due(close_limit(watermark, T0 + MIN + GRACE - 1, last_event, GRACE)) == []
    assert windows.due(close_limit(watermark, T0 + MIN + GRACE, last_event, GRACE)) == [
        ("s-0", T0 // 1000)]
    assert windows.next_end() is None and len(windows) == 0


def test_a_busy_replay_of_old_orders_closes_by_its_watermark_not_the_wall_clock():
    windows = _open(T0 + MIN, T0 + 5 * MIN)
    now = T0 + 86_400_000  # a day later: every window is past end + grace by the wall clock
    assert windows.due(close_limit(T0 + 2 * MIN, now, now - 100, GRACE)) == [
        ("s-0", T0 // 1000)]
    assert len(windows) == 1


def test_due_windows_come_in_end_order_and_each_once():
    windows = OpenWindows()
    windows.add(("b", 60), 120_000)
    windows.add(("a", 0), 60_000)
    windows.add(("a", 0), 60_000)  # touched again by a later batch: still one window
    windows.add(("a", 0, "1h"), 3_600_000)
    assert len(windows) == 3
    assert windows.due(3_600_000) == [("a", 0), ("b", 60), ("a", 0, "1h")]
    assert windows.due(10 ** 15) == []


def test_a_late_order_on_a_closed_window_closes_it_again_with_the_next_revision():
    closed = WindowValue(2, {"JPY": 200}, 3, (8, -1)).closed(T0 + 2 * MIN)
    assert (closed.revision, closed.closed_at_ms) == (1, T0 + 2 * MIN)
    late = closed._replace(orders=3, revenue={"JPY": 250}, items=4, fences=(12, -1))
    again = reclosed(closed, late, T0 + 9 * MIN)
    assert again == late._replace(revision=2, closed_at_ms=T0 + 9 * MIN)
    # a replay re-applies nothing (the fences): same figures, no new revision
    assert reclosed(closed, closed._replace(fences=(12, -1)), T0 + 9 * MIN) is None
    # an open window is closed by the rules, not by an order
    assert reclosed(WindowValue(), WindowValue(1, {"JPY": 1}, 1, (3, -1)), T0) is None


def test_a_restart_publishes_again_only_what_is_not_confirmed():
    value = WindowValue(1, {"JPY": 1}, 1, (3, -1))
    assert not unconfirmed(value, 0)  # open
    closed = value.closed(T0)
    assert unconfirmed(closed, T0 - 1)
    assert not unconfirmed(closed, T0)


def test_the_close_lives_in_the_stored_value_and_old_values_still_load():
    value = WindowValue(3, {"USD": 1250}, 7, (5, 9)).closed(T0)
    assert value.dump() == [3, {"USD": 1250}, 7, 5, 9, 1, T0]
    assert WindowValue.load(value.dump()) == value
    assert WindowValue(3, {"USD": 1}, 7, (5, 9)).dump() == [3, {"USD": 1}, 7, 5, 9]
    assert WindowValue.load([1, 900, 2, 7]) == WindowValue(1, {"XXX": 900}, 2, (7, -1))


@pytest.mark.parametrize("value", [
    WindowValue(3, {"USD": 1250}, 7, (5, 9)),
    WindowValue(3, {"USD": 1250}, 7, (5, 9)).closed(T0),
    WindowValue(3, {"USD": 1250, "EUR": -4, "JPY": 9}, 7, (-1, 12)).closed(T0).closed(T0 + 9),
    WindowValue(3, {"A},1,2,3,4": 5, "B\\\",": 6}, 7, (5, 9)),
    WindowValue(3, {"A},1,2,3,4": 5, "B\\\",": 6}, 7, (5, 9)).closed(T0),
    WindowValue(0, {}, 0, (-1, -1)),
    WindowValue(0, {}, 0, (-1, -1)).closed(T0),
])
def test_the_close_time_read_from_the_stored_bytes_is_the_decoded_one(value):
    raw = orjson.dumps(value.dump())
    assert WindowValue.closed_at_of(raw) == (value.closed_at_ms if value.revision else 0)
    assert WindowValue.load(orjson.loads(raw)) == value


@pytest.mark.parametrize("stored", [[1, 900, 2, 7], [1, 900, 2, 7, 8], [1, {"X": 1}, 2, 7]])
def test_older_value_formats_read_as_open(stored):
    assert WindowValue.closed_at_of(orjson.dumps(stored)) == 0


# -- the published record -----------------------------------------------------------------

def test_results_encode_to_stable_key_and_value_bytes():
    hour = T0
    value = WindowValue(3, {"USD": 1250, "JPY": 900}, 7, (5, -1)).closed(hour + 61 * MIN + 123)
    value = value._replace(revision=2)
    result = WindowResult.of("s-042", "1h", hour, hour + 60 * MIN, value, 1,
                             "2026-11-18T12:00:00+09:00")
    key, raw = encode_result(result)
    assert key == b'["s-042","1h","2026-11-18T03:00:00Z"]'
    assert key == result_key("s-042", "1h", hour)
    assert orjson.loads(raw) == {
        "store": "s-042", "window": "1h", "label": "2026-11-18T12:00:00+09:00",
        "start": "2026-11-18T03:00:00Z", "end": "2026-11-18T04:00:00Z",
        "orders": 3, "revenue": {"JPY": 900, "USD": 1250}, "items": 7,
        "closed_at": "2026-11-18T04:01:00.123Z", "revision": 2, "epoch": 1}
    again = value._replace(revenue={"JPY": 900, "USD": 1250})
    assert encode_result(WindowResult.of("s-042", "1h", hour, hour + 60 * MIN, again, 1,
                                         "2026-11-18T12:00:00+09:00")) == (key, raw)
    assert b"label" not in encode_result(result._replace(label=None))[1]


def test_an_open_window_has_no_result():
    with pytest.raises(ValueError, match="not closed"):
        WindowResult.of("s-1", "1m", T0, T0 + MIN, WindowValue(4, {"JPY": 1}, 4, (6, -1)))


def test_a_key_names_a_whole_second():
    with pytest.raises(ValueError, match="whole second"):
        result_key("s-1", "1m", T0 + 1)
