"""Hostile order events: each must reach the dead-letter topic with a precise reason.

Written by hand, not by the generator the truth comes from, and not derived from the
decoder's own messages: ``reason`` is the part of the dead-letter reason a user must be able
to act on (which field, what limit). Shared by the hostile-input test and the benchmark's
5%-hostile run (bench imports tests, never the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import orjson

# Broker default message.max.bytes is 1,048,588; the decoder refuses events over 1,000,000.
NEAR_BROKER_LIMIT = 1_040_000


@dataclass(frozen=True)
class Hostile:
    name: str
    value: bytes | None
    reason: str  # a substring the dead-letter reason must contain


def _order(**changes: object) -> dict:
    doc: dict = {"order_id": "h-1", "store_id": "s-hostile", "created_at": "2026-11-22T12:00:00Z",
                 "items": [{"sku": "A", "qty": 1, "unit_price": 100}], "total": 100,
                 "currency": "EUR"}
    doc.update(changes)
    return doc


def _raw(text: str) -> bytes:
    return text.encode()


def corpus(order_id: str = "h") -> list[Hostile]:
    """One case per kind of hostility; ``order_id`` prefixes the ids of JSON cases, so that
    several copies of the corpus never share an order id."""
    def doc(i: int, **changes: object) -> bytes:
        return orjson.dumps(_order(order_id=f"{order_id}-{i}", **changes))

    padding = "x" * (NEAR_BROKER_LIMIT - 300)
    return [
        Hostile("undecodable", b"\xff\xfe\x00\x9c garbage \xc3\x28", "not valid UTF-8 JSON"),
        Hostile("null_value", None, "no value"),
        Hostile("empty_value", b"", "not valid UTF-8 JSON"),
        Hostile("near_broker_limit", doc(1, padding=padding), "more than 1000000"),
        Hostile("deep_nesting", b"[" * 10_000 + b"]" * 10_000, "not valid UTF-8 JSON"),
        Hostile("deep_nesting_in_field", _raw('{"order_id": "d", "store_id": "s", "items": '
                                              + "[" * 10_000 + "]" * 10_000 + "}"),
                "not valid UTF-8 JSON"),
        Hostile("nan_total", _raw(f'{{"order_id": "{order_id}-2", "store_id": "s-1", '
                                  '"created_at": "2026-11-22T12:00:00Z", "items": [], '
                                  '"total": NaN}'), "not valid UTF-8 JSON"),
        Hostile("infinity_total", _raw(f'{{"order_id": "{order_id}-3", "store_id": "s-1", '
                                       '"created_at": "2026-11-22T12:00:00Z", "items": [], '
                                       '"total": Infinity}'), "not valid UTF-8 JSON"),
        Hostile("int_beyond_64_bits", _raw(f'{{"order_id": "{order_id}-4", "store_id": "s-1", '
                                           '"created_at": "2026-11-22T12:00:00Z", "items": [],'
                                           ' "total": 184467440737095516160}'),
                "total must be an integer between 0 and 1000000000000000, got a number beyond "
                "64 bits"),
        Hostile("total_above_limit", doc(5, total=10**16), "total must be between"),
        Hostile("store_id_number", doc(6, store_id=42), "store_id must be a non-empty string"),
        Hostile("items_object", doc(7, items={"sku": "A"}), "items must be a list"),
        Hostile("qty_string", doc(8, items=[{"sku": "A", "qty": "2", "unit_price": 1}]),
                "items[0].qty must be an integer"),
        Hostile("total_string", doc(9, total="100"), "total must be an integer"),
        Hostile("total_bool", doc(10, total=True), "total must be an integer"),
        Hostile("empty_order_id", orjson.dumps(_order(order_id="")),
                "order_id must be a non-empty string"),
        Hostile("blank_store_id", doc(11, store_id="   "), "store_id must be a non-empty string"),
        Hostile("long_order_id", orjson.dumps(_order(order_id="o" * 10_000)),
                "order_id is longer than"),
        Hostile("long_store_id", doc(12, store_id="s" * 10_000), "store_id is longer than"),
        Hostile("nul_in_store_id", doc(13, store_id="s-1\x00"), "U+0000"),
        Hostile("newline_in_order_id", orjson.dumps(_order(order_id=f"{order_id}-14\n")),
                "U+000A"),
        Hostile("escape_in_store_id", doc(15, store_id="s-\x1b[31m"), "U+001B"),
        Hostile("time_far_past", doc(16, created_at="1970-01-01T00:00:00Z"),
                "outside the accepted range"),
        Hostile("time_far_future", doc(17, created_at="3000-01-01T00:00:00Z"),
                "outside the accepted range"),
        Hostile("time_without_offset", doc(18, created_at="2026-11-22T12:00:00"),
                "created_at is not an ISO-8601 time with offset"),
        Hostile("time_number", doc(19, created_at=1795348800), "created_at is not an ISO-8601"),
        Hostile("not_an_object", _raw('"just a string"'), "must be a JSON object"),
        Hostile("array", orjson.dumps([_order()]), "must be a JSON object"),
    ]


def hostile_stream(count: int, seed_prefix: str = "hb") -> Iterator[Hostile]:
    """``count`` hostile events for the benchmark: the corpus over and over, without the
    near-limit case (a megabyte per copy would make the run about bytes, not events)."""
    n = 0
    while True:
        for case in corpus(f"{seed_prefix}{n}"):
            if case.name == "near_broker_limit":
                continue
            if n >= count:
                return
            yield case
            n += 1
