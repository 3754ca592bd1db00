import orjson

from app.order import InvalidOrder, decode_order
from app.cli.order_generator import GeneratorConfig, OrderGenerator

NOW = 1_795_348_800_000


def test_truth_accounts_for_every_event_by_decoding_what_was_produced():
    gen = OrderGenerator(GeneratorConfig(stores=20, seed=3, duplicate_share=0.05,
                                         invalid_share=0.05, late_share=0.05))
    seen, counted, invalid, dups = set(), {}, 0, 0
    for key, value in gen.events(5000, NOW - 3_600_000, 3_600_000, NOW):
        try:
            order = decode_order(value, NOW + 60_000)
        except InvalidOrder:
            invalid += 1
            continue
        assert key == order.store_id.encode()  # raw keys by default
        if order.order_id in seen:
            dups += 1
            continue
        seen.add(order.order_id)
        t = counted.setdefault(order.store_id, [0, 0, 0])
        t[0] += 1
        t[1] += order.total
        t[2] += order.items
    truth = gen.truth
    assert (truth.produced, truth.invalid, truth.duplicates) == (5000, invalid, dups)
    assert invalid > 150 and dups > 150 and truth.late > 150
    for store_id, (orders, revenue, items) in counted.items():
        totals = truth.stores[store_id]["totals"]
        assert (totals["orders"], totals["revenue"], totals["items"]) == (orders, revenue, items)
        windows = truth.stores[store_id]["windows"]
        assert sum(w["orders"] for w in windows.values()) == orders - totals["late"]


def test_zipf_skew_and_seed_reproducibility():
    a = OrderGenerator(GeneratorConfig(stores=100, seed=9))
    b = OrderGenerator(GeneratorConfig(stores=100, seed=9))
    ea = list(a.events(3000, NOW, 60_000, NOW))
    assert ea == list(b.events(3000, NOW, 60_000, NOW))
    counts = sorted((s["totals"]["orders"] for s in a.truth.stores.values()), reverse=True)
    assert counts[0] > 10 * counts[-1]


def test_windows_in_truth_are_half_open_and_aligned_to_the_epoch():
    # NOW is 2026-11-22T12:00:00Z, a multiple of 300 s: written out, not computed by the
    # code under test.
    gen = OrderGenerator(GeneratorConfig(stores=1, window_size_s=300))
    gen.event(NOW + 299_999, NOW + 300_000)  # the last millisecond of [12:00, 12:05)
    gen.event(NOW + 300_000, NOW + 300_000)  # the first of [12:05, 12:10)
    assert sorted(gen.truth.stores["s-0000"]["windows"]) == ["2026-11-22T12:00:00Z",
                                                             "2026-11-22T12:05:00Z"]


def test_key_styles_spell_the_store_as_producers_do():
    def keys(style):
        gen = OrderGenerator(GeneratorConfig(stores=1, keys=style, seed=1))
        return {gen.event(NOW, NOW)[0] for _ in range(30)}

    assert keys("raw") == {b"s-0000"}
    assert keys("json") == {orjson.dumps("s-0000")}
    assert keys("none") == {None}
    assert keys("mixed") == {b"s-0000", orjson.dumps("s-0000"), None}
