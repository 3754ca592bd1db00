from app.order import Order
from tables.fence import Applied, apply_batch, window_keys
from tables.values import TotalsValue, WindowValue
from tables.windows import TumblingWindows

SIZE = TumblingWindows(60, 3600)
CUTOFF = 1_000_000_000  # ms; anything created before is late


def order(n, store="s-1", t_ms=1_700_000_000_000, total=100, items=2):
    return Order(f"o-{n}", store, t_ms, items, total)


def test_batch_sums_per_window_and_store_and_moves_the_fences():
    batch = [Applied(10, order(1)), Applied(11, order(2, total=50)),
             Applied(12, order(3, t_ms=1_700_000_060_000)), Applied(13, order(4, store="s-2"))]
    result = apply_batch(batch, {}, {}, SIZE, CUTOFF)
    assert result.windows == {("s-1", 1_699_999_980): WindowValue(2, 150, 4, 11),
                              ("s-1", 1_700_000_040): WindowValue(1, 100, 2, 12),
                              ("s-2", 1_699_999_980): WindowValue(1, 100, 2, 13)}
    assert result.totals == {"s-1": TotalsValue(3, 250, 6, 0, 12),
                             "s-2": TotalsValue(1, 100, 2, 0, 13)}
    assert result.counted == 4 and result.replayed == 0


def test_replayed_events_at_or_below_the_fence_are_not_counted_again():
    first = apply_batch([Applied(5, order(1)), Applied(6, order(2))], {}, {}, SIZE, CUTOFF)
    # crash after the window was stored but before the totals were: replay both events
    replay = apply_batch([Applied(5, order(1)), Applied(6, order(2)), Applied(7, order(3))],
                         dict(first.windows), {}, SIZE, CUTOFF)
    assert replay.windows[("s-1", 1_699_999_980)] == WindowValue(3, 300, 6, 7)
    assert replay.totals["s-1"] == TotalsValue(3, 300, 6, 0, 7)
    assert replay.replayed == 0  # totals had no fence yet, so all three count there
    again = apply_batch([Applied(5, order(1)), Applied(7, order(3))], dict(replay.windows),
                        dict(replay.totals), SIZE, CUTOFF)
    assert again.windows == replay.windows and again.totals == replay.totals
    assert again.counted == 0 and again.replayed == 2


def test_late_orders_count_in_totals_but_not_in_windows():
    late = order(1, t_ms=CUTOFF - 1, total=70, items=1)
    result = apply_batch([Applied(1, late), Applied(2, order(2))], {}, {}, SIZE, CUTOFF)
    assert result.totals["s-1"] == TotalsValue(2, 170, 3, 1, 2)
    assert list(result.windows) == [("s-1", 1_699_999_980)]
    assert result.late == 1
    assert window_keys([Applied(1, late)], SIZE, CUTOFF) == set()


def test_inputs_are_not_mutated():
    stored = {"s-1": TotalsValue()}
    apply_batch([Applied(1, order(1))], {}, stored, SIZE, CUTOFF)
    assert stored["s-1"] == TotalsValue()


def test_values_load_from_their_stored_lists():
    assert WindowValue.load(None) == WindowValue(0, 0, 0, -1)
    assert TotalsValue.load([1, 2, 3, 4, 5]).late == 4
