"""When windows close and what their results say (tables/closing.py); times are plain ms."""

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.closing import ClosingState, Due, Observed, WindowResult, encode_result, result_key
from tables.values import WindowValue

GRACE = 60_000
MIN = 60_000
T0 = 1_795_000_020_000  # a minute boundary (ms)


def state_with(*windows, fences=(1, -1)):
    state = ClosingState()
    for store, start in windows:
        assert state.observe(store, "1m", start, start + MIN, fences) is Observed.OPEN
    return state


def ids(dues):
    return [(d.store, d.start_ms, d.revision) for d in dues]


# -- the watermark rule -------------------------------------------------------------------

def test_a_window_closes_when_the_watermark_reaches_its_end_plus_grace():
    state = state_with(("s-1", T0))
    busy = T0 + 10 * MIN  # wall clock far ahead, but the partition just received an event
    assert state.due(T0 + MIN + GRACE - 1, busy, busy, GRACE) == []
    (due,) = state.due(T0 + MIN + GRACE, busy, busy, GRACE)
    assert due == Due("s-1", "1m", T0, T0 + MIN, 1, busy, (1, -1))
    assert state.due(T0 + 5 * MIN, busy, busy, GRACE) == []  # closed once


def test_due_windows_come_in_end_order_and_the_later_ones_wait():
    state = state_with(("s-2", T0 + MIN), ("s-1", T0 + MIN), ("s-9", T0), ("s-3", T0 + 2 * MIN))
    state.observe("s-1", "1h", T0 - 20 * MIN, T0 + 40 * MIN, (1, -1))
    dues = state.due(T0 + 2 * MIN + GRACE, 0, 0, GRACE)
    assert [(d.store, d.size, d.end_ms) for d in dues] == [
        ("s-9", "1m", T0 + MIN), ("s-1", "1m", T0 + 2 * MIN), ("s-2", "1m", T0 + 2 * MIN)]
    assert ids(state.due(T0 + 40 * MIN + GRACE, 0, 0, GRACE)) == [("s-3", T0 + 2 * MIN, 1),
                                                                  ("s-1", T0 - 20 * MIN, 1)]


# -- the idle rule ------------------------------------------------------------------------

def test_an_idle_partition_closes_by_the_wall_clock():
    state = state_with(("s-1", T0))
    watermark = T0 + 30_000  # the last order; nothing after it, ever
    last_event = T0 + 31_000
    close_at = T0 + MIN + GRACE
    assert state.due(watermark, close_at - 1, last_event, GRACE) == []  # too early
    (due,) = state.due(watermark, close_at, last_event, GRACE)
    assert (due.revision, due.closed_at_ms) == (1, close_at)


def test_the_idle_rule_waits_for_grace_of_silence_not_just_the_clock():
    state = state_with(("s-1", T0))
    now = T0 + MIN + GRACE + 5_000
    assert state.due(T0, now, now - GRACE + 1, GRACE) == []  # an event 59.999 s ago
    assert ids(state.due(T0, now, now - GRACE, GRACE)) == [("s-1", T0, 1)]


def test_a_partition_with_no_event_since_assignment_counts_as_idle():
    state = state_with(("s-1", T0))
    assert ids(state.due(0, T0 + MIN + GRACE, None, GRACE)) == [("s-1", T0, 1)]


def test_a_busy_partition_replaying_old_orders_is_not_closed_by_the_wall_clock():
    state = state_with(("s-1", T0), ("s-1", T0 + MIN))
    now = T0 + 3_600_000  # an hour later: replaying a backlog, events arrive all the time
    assert state.due(T0 + MIN + 59_000, now, now - 5, GRACE) == []
    assert ids(state.due(T0 + MIN + GRACE, now, now - 5, GRACE)) == [("s-1", T0, 1)]


# -- revisions ----------------------------------------------------------------------------

def test_an_order_after_the_close_reopens_the_window_and_bumps_the_revision():
    state = state_with(("s-1", T0), fences=(10, -1))
    now = T0 + 5 * MIN
    (first,) = state.due(now, now, now, GRACE)
    assert (first.revision, first.fences) == (1, (10, -1))
    assert state.observe("s-1", "1m", T0, T0 + MIN, (10, -1)) is Observed.SETTLED  # replay
    assert state.due(now, now, now, GRACE) == []
    assert state.observe("s-1", "1m", T0, T0 + MIN, (17, -1)) is Observed.REOPENED  # late
    assert state.observe("s-1", "1m", T0, T0 + MIN, (18, 4)) is Observed.OPEN  # still dirty
    (second,) = state.due(now, now + 1, now + 1, GRACE)  # the next due() republishes it
    assert (second.revision, second.fences, second.closed_at_ms) == (2, (18, 4), now + 1)
    assert state.observe("s-1", "1m", T0, T0 + MIN, (19, 4)) is Observed.REOPENED
    assert ids(state.due(now, now + 2, now + 2, GRACE)) == [("s-1", T0, 3)]


def test_each_size_and_store_has_its_own_revisions():
    state = ClosingState()
    for store in ("s-1", "s-2"):
        state.observe(store, "1m", T0, T0 + MIN, (1, -1))
        state.observe(store, "1h", T0 - 20 * MIN, T0 + 40 * MIN, (1, -1))
    late = T0 + 2 * 3_600_000
    assert len(state.due(late, late, late, GRACE)) == 4
    state.observe("s-2", "1h", T0 - 20 * MIN, T0 + 40 * MIN, (2, -1))
    assert [(d.store, d.size, d.revision) for d in state.due(late, late, late, GRACE)] == [
        ("s-2", "1h", 2)]


# -- crash and restart: the revision comes from durable state ------------------------------

def crash_and_restart(state):
    """What a new owner has: the last state the changelog holds, nothing in memory."""
    return ClosingState.load(state.dump())


def test_a_restart_before_publishing_republishes_the_same_revision_and_close_time():
    state = state_with(("s-1", T0), fences=(10, -1))
    (due,) = state.due(T0 + 5 * MIN, T0 + 5 * MIN, T0, GRACE)
    restored = crash_and_restart(state)  # state flushed; publish lost in the crash
    assert restored.observe("s-1", "1m", T0, T0 + MIN, (10, -1)) is Observed.SETTLED
    assert restored.pending() == [due]
    restored.published(restored.pending())
    assert restored.pending() == []
    assert crash_and_restart(restored).pending() == []


def test_a_restart_after_a_lost_state_record_closes_again_with_the_same_revision():
    before_close = state_with(("s-1", T0), fences=(10, -1))
    saved = before_close.dump()  # the close's state record never reached the changelog
    now = T0 + 5 * MIN
    (first,) = before_close.due(now, now, now, GRACE)
    # (nothing was published either: publishing waits for the state flush)
    restored = ClosingState.load(saved)
    restored.observe("s-1", "1m", T0, T0 + MIN, (10, -1))  # the replayed batch
    (again,) = restored.due(now + 7, now + 7, now + 7, GRACE)
    assert (again.store, again.start_ms, again.revision, again.fences) == (
        first.store, first.start_ms, first.revision, first.fences)


def test_a_window_that_moved_on_since_its_close_is_not_republished_with_that_revision():
    state = state_with(("s-1", T0), fences=(10, -1))
    now = T0 + 5 * MIN
    state.due(now, now, now, GRACE)  # revision 1 pinned to fences (10, -1), then a crash
    restored = crash_and_restart(state)
    # The table's value got a late order whose state record was lost: fences differ.
    assert restored.observe("s-1", "1m", T0, T0 + MIN, (12, -1)) is Observed.REOPENED
    assert restored.pending() == []  # revision 1 would now carry a different value
    (due,) = restored.due(now + 9, now + 9, now + 9, GRACE)
    assert (due.revision, due.fences) == (2, (12, -1))


def test_the_same_input_after_a_restart_yields_the_same_dues():
    def run(state, steps):
        out = []
        for kind, *args in steps:
            if kind == "obs":
                state.observe(*args)
            else:
                out += state.due(*args, GRACE)
        return out

    steps = [("obs", "s-1", "1m", T0, T0 + MIN, (1, -1)),
             ("obs", "s-2", "1m", T0, T0 + MIN, (2, -1)),
             ("due", T0 + 2 * MIN + 1, T0 + 2 * MIN + 1, T0),
             ("obs", "s-1", "1m", T0, T0 + MIN, (3, -1)),
             ("obs", "s-1", "1m", T0 + MIN, T0 + 2 * MIN, (4, -1)),
             ("due", T0 + 2 * MIN + 2, T0 + 2 * MIN + 2, T0 + 2 * MIN)]
    straight = run(ClosingState(), steps)
    state = ClosingState()
    first = run(state, steps[:3])
    resumed = first + run(crash_and_restart(state), steps[3:])
    assert straight == resumed
    assert ids(straight) == [("s-1", T0, 1), ("s-2", T0, 1), ("s-1", T0, 2)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3), st.booleans(),
                          st.integers(0, 3)), max_size=40),
       st.integers(0, 40))
def test_restarting_anywhere_changes_nothing_and_revisions_only_grow(ops, cut):
    """A run with a dump/load at step ``cut`` publishes exactly what a straight run does,
    and per window the revisions are 1, 2, 3... each with its own fences."""
    def run(restart_at):
        state, out, offset = ClosingState(), [], 0
        for i, (store, minute, closes, bump) in enumerate(ops):
            if i == restart_at:
                state = ClosingState.load(state.dump())
            offset += bump
            start = T0 + minute * MIN
            state.observe(f"s-{store}", "1m", start, start + MIN, (offset, -1))
            if closes:
                now = T0 + (minute + 2) * MIN + i
                out += state.due(now, now, now - 1, GRACE)
        return out

    straight = run(-1)
    assert run(cut) == straight
    seen: dict = {}
    for due in straight:
        key = (due.store, due.size, due.start_ms)
        revision, fences = seen.get(key, (0, None))
        assert due.revision == revision + 1 and due.fences != fences
        seen[key] = (due.revision, due.fences)


# -- forgetting and serialization ---------------------------------------------------------

def test_forgetting_drops_settled_published_windows_and_ignores_their_stragglers():
    state = state_with(("s-1", T0), ("s-1", T0 + MIN), ("s-1", T0 + 5 * MIN))
    dues = state.due(T0 + 3 * MIN, T0 + 3 * MIN, T0, GRACE)
    assert len(dues) == 2
    assert state.forget("1m", T0 + 2 * MIN) == 0  # not yet confirmed published: kept
    state.published(dues)
    assert state.forget("1m", T0 + MIN) == 1 and len(state) == 2
    restored = crash_and_restart(state)
    assert restored.observe("s-1", "1m", T0, T0 + MIN, (9, -1)) is Observed.EXPIRED
    assert restored.observe("s-1", "1m", T0 + MIN, T0 + 2 * MIN, (9, -1)) is Observed.REOPENED
    assert len(restored) == 2


def test_the_serialized_state_is_compact_and_round_trips():
    state = ClosingState()
    for i in range(1000):
        state.observe(f"s-{i:03d}", "1m", T0, T0 + MIN, (100 + i, -1))
    state.due(T0 + 2 * MIN, T0 + 2 * MIN, T0, GRACE)
    raw = state.dump()
    assert len(raw) < 70 * 1000  # about 67 bytes per window
    assert crash_and_restart(state).dump() == raw
    assert ClosingState.load(None).dump() == ClosingState().dump()
    with pytest.raises(ValueError, match="format"):
        ClosingState.load(orjson.dumps([99, {}, []]))


# -- the published record -----------------------------------------------------------------

def test_results_encode_to_stable_key_and_value_bytes():
    hour = 1_794_970_800_000  # 2026-11-18T03:00:00Z
    due = Due("s-042", "1h", hour, hour + 60 * MIN, 2, hour + 61 * MIN + 123, (5, -1))
    value = WindowValue(3, {"USD": 1250, "JPY": 900}, 7, (5, -1))
    result = WindowResult.of(due, value, label="2026-11-18T12:00+09")
    key, raw = encode_result(result)
    assert key == b'["s-042","1h","2026-11-18T03:00:00Z"]'
    assert key == result_key("s-042", "1h", hour)
    assert orjson.loads(raw) == {
        "store": "s-042", "window": "1h", "label": "2026-11-18T12:00+09",
        "start": "2026-11-18T03:00:00Z", "end": "2026-11-18T04:00:00Z",
        "orders": 3, "revenue": {"JPY": 900, "USD": 1250}, "items": 7,
        "closed_at": "2026-11-18T04:01:00.123Z", "revision": 2}
    again = value._replace(revenue={"JPY": 900, "USD": 1250})
    assert encode_result(WindowResult.of(due, again, label="2026-11-18T12:00+09")) == (key, raw)
    assert b"label" not in encode_result(result._replace(label=None))[1]


def test_a_value_that_is_not_the_closed_one_cannot_be_published_under_its_revision():
    due = Due("s-1", "1m", T0, T0 + MIN, 1, T0 + 2 * MIN, (5, -1))
    with pytest.raises(ValueError, match="fences"):
        WindowResult.of(due, WindowValue(4, {"JPY": 1}, 4, (6, -1)))


def test_a_key_names_a_whole_second():
    with pytest.raises(ValueError, match="whole second"):
        result_key("s-1", "1m", T0 + 1)
