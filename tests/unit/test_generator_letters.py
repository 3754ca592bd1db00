"""The truth records each acknowledged invalid event as sent, and the freshest order's time."""

from __future__ import annotations

import base64

from app.cli.order_generator import GeneratorConfig, OrderGenerator
from app.order import InvalidOrder, decode_order

NOW = 1_795_348_800_000


def test_every_acknowledged_invalid_event_is_recorded_with_its_bytes_and_headers():
    gen = OrderGenerator(GeneratorConfig(stores=5, seed=4, invalid_share=0.2, keys="mixed"))
    made = [gen.next_event(NOW, NOW) for _ in range(500)]
    sent_invalid = []
    for key, value, effect in made[:400]:  # the last 100 never acknowledged
        gen.truth.apply(effect)
        if effect.store_id is None:
            sent_invalid.append((key, value, effect.headers))
    recorded = gen.truth.to_json()["invalid_events"]
    assert len(recorded) == gen.truth.invalid == len(sent_invalid) > 50
    for (key, value, headers), rec in zip(sent_invalid, recorded):
        assert rec["key"] == (None if key is None else base64.b64encode(key).decode())
        assert base64.b64decode(rec["value"]) == value
        assert [(n, base64.b64decode(v)) for n, v in rec["headers"]] == headers
        assert dict(headers)["x-producer"] == b"orderstats-generate"
        try:
            decode_order(value, NOW + 60_000)
        except InvalidOrder:
            continue
        raise AssertionError(f"recorded as invalid but decodes: {value!r}")
    assert all(e.headers is None for _k, _v, e in made if e.store_id is not None)


def test_without_a_truth_file_invalid_events_are_counted_not_kept():
    gen = OrderGenerator(GeneratorConfig(stores=5, seed=4, invalid_share=0.5,
                                         record_invalid=False))
    for _ in range(100):
        gen.event(NOW, NOW)
    assert gen.truth.invalid > 20 and gen.truth.to_json()["invalid_events"] == []


def test_the_watermark_is_the_latest_counted_order():
    gen = OrderGenerator(GeneratorConfig(stores=3, seed=1))
    for created in (NOW - 5_000, NOW + 1_234, NOW - 1):
        gen.event(created, NOW + 10_000)
    assert gen.truth.to_json()["watermark"] == "2026-11-22T12:00:01.234Z"  # NOW + 1,234 ms
