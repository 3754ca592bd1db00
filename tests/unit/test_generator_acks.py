"""The generator's truth counts acknowledged events only: effects applied on ack."""

from __future__ import annotations

from app.cli.order_generator import GeneratorConfig, OrderGenerator

NOW = 1_795_000_000_000


def test_unacknowledged_events_are_not_in_the_truth():
    gen = OrderGenerator(GeneratorConfig(stores=5, seed=3, invalid_share=0.2))
    made = [gen.next_event(NOW, NOW) for _ in range(100)]
    assert gen.truth.produced == 0  # generated, nothing acknowledged yet
    for _key, _value, effect in made[:60]:
        gen.truth.apply(effect)
    pure = OrderGenerator(GeneratorConfig(stores=5, seed=3, invalid_share=0.2))
    for _ in range(60):
        pure.event(NOW, NOW)
    assert gen.truth.to_json() == pure.truth.to_json()


def test_a_duplicate_acknowledged_before_its_original_counts_the_order_once():
    gen = OrderGenerator(GeneratorConfig(stores=1, seed=1, duplicate_share=0.5))
    made = [gen.next_event(NOW, NOW) for _ in range(200)]
    originals = {}
    for key, value, effect in made:
        originals.setdefault(value, []).append(effect)
    value, effects = next((v, e) for v, e in originals.items() if len(e) > 1)
    assert all(e is effects[0] for e in effects)  # a re-send carries its original's effect
    for effect in reversed(effects):  # acked in any order: one order, the rest duplicates
        gen.truth.apply(effect)
    assert gen.truth.valid == 1 and gen.truth.duplicates == len(effects) - 1
