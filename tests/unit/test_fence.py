from app.order import Order
from tables.fence import Applied, apply_batch, window_keys
from tables.values import ORDERS, REPARTITION, TotalsValue, WindowValue
from tables.windows import TumblingWindows

SIZE = TumblingWindows(60, 3600)
CUTOFF = 1_000_000_000  # ms; anything created before is late
W0, W1 = 1_699_999_980, 1_700_000_040


def order(n, store="s-1", t_ms=1_700_000_000_000, total=100, items=2, currency="JPY"):
    return Order(f"o-{n}", store, t_ms, items, total, currency)


def direct(offset, o):
    return Applied(ORDERS, offset, o)


def test_batch_sums_per_window_and_store_and_moves_the_fences():
    batch = [direct(10, order(1)), direct(11, order(2, total=50)),
             direct(12, order(3, t_ms=1_700_000_060_000)), direct(13, order(4, store="s-2"))]
    result = apply_batch(batch, {}, {}, SIZE, CUTOFF)
    assert result.windows == {("s-1", W0): WindowValue(2, {"JPY": 150}, 4, (11, -1)),
                              ("s-1", W1): WindowValue(1, {"JPY": 100}, 2, (12, -1)),
                              ("s-2", W0): WindowValue(1, {"JPY": 100}, 2, (13, -1))}
    assert result.totals == {"s-1": TotalsValue(3, {"JPY": 250}, 6, 0, (12, -1)),
                             "s-2": TotalsValue(1, {"JPY": 100}, 2, 0, (13, -1))}
    assert result.counted == 4 and result.replayed == 0


def test_replayed_events_at_or_below_the_fence_are_not_counted_again():
    first = apply_batch([direct(5, order(1)), direct(6, order(2))], {}, {}, SIZE, CUTOFF)
    # crash after the window was stored but before the totals were: replay both events
    replay = apply_batch([direct(5, order(1)), direct(6, order(2)), direct(7, order(3))],
                         dict(first.windows), {}, SIZE, CUTOFF)
    assert replay.windows[("s-1", W0)] == WindowValue(3, {"JPY": 300}, 6, (7, -1))
    assert replay.totals["s-1"] == TotalsValue(3, {"JPY": 300}, 6, 0, (7, -1))
    assert replay.replayed == 0  # totals had no fence yet, so all three count there
    again = apply_batch([direct(5, order(1)), direct(7, order(3))], dict(replay.windows),
                        dict(replay.totals), SIZE, CUTOFF)
    assert again.windows == replay.windows and again.totals == replay.totals
    assert again.counted == 0 and again.replayed == 2


def test_each_source_has_its_own_fence():
    # offset 3 of the repartition topic is not "below" offset 9 of the orders topic
    result = apply_batch([direct(9, order(1)), Applied(REPARTITION, 3, order(2))], {}, {},
                         SIZE, CUTOFF)
    assert result.totals["s-1"] == TotalsValue(2, {"JPY": 200}, 4, 0, (9, 3))
    replay = apply_batch([Applied(REPARTITION, 3, order(2)), direct(9, order(1)),
                          Applied(REPARTITION, 4, order(3))], result.windows, result.totals,
                         SIZE, CUTOFF)
    assert replay.totals["s-1"].orders == 3 and replay.replayed == 2


def test_currencies_are_summed_apart_never_together():
    result = apply_batch([direct(1, order(1, total=1250, currency="USD")),
                          direct(2, order(2, total=900)),
                          direct(3, order(3, total=50, currency="USD"))], {}, {}, SIZE, CUTOFF)
    assert result.totals["s-1"].revenue == {"USD": 1300, "JPY": 900}


def test_late_orders_count_in_totals_but_not_in_windows():
    late = order(1, t_ms=CUTOFF - 1, total=70, items=1)
    result = apply_batch([direct(1, late), direct(2, order(2))], {}, {}, SIZE, CUTOFF)
    assert result.totals["s-1"] == TotalsValue(2, {"JPY": 170}, 3, 1, (2, -1))
    assert list(result.windows) == [("s-1", W0)]
    assert result.late == 1
    assert window_keys([direct(1, late)], SIZE, CUTOFF) == set()


def test_inputs_are_not_mutated():
    stored = {"s-1": TotalsValue(1, {"JPY": 5}, 1, 0, (0, -1))}
    apply_batch([direct(1, order(1))], {}, stored, SIZE, CUTOFF)
    assert stored["s-1"] == TotalsValue(1, {"JPY": 5}, 1, 0, (0, -1))


def test_values_load_from_their_stored_lists_including_older_shapes():
    assert WindowValue.load(None) == WindowValue(0, {}, 0, (-1, -1))
    assert WindowValue.load([1, 900, 2, 7]) == WindowValue(1, {"XXX": 900}, 2, (7, -1))
    assert TotalsValue.load([1, {"USD": 5}, 3, 0, 8, 2]).fences == (8, 2)
    v = TotalsValue(1, {"USD": 5}, 3, 0, (8, 2))
    assert TotalsValue.load(v.dump()) == v
