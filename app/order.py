"""The order event: decoding and validation, pure functions with no Faust or Kafka import.

The contract is the README's "The event". Anything that does not meet it raises InvalidOrder with
a reason that goes to the dead-letter topic verbatim, so reasons are written for the person who
has to fix the producer.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from app.timefmt import parse_iso_ms

MAX_ID_LEN = 200
MAX_ITEMS = 1_000
MAX_QTY = 1_000_000
MAX_MONEY = 10**15  # minor units; far above any real order, far below int64
MIN_TIME_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_EVENT_BYTES = 1_000_000


class Order(NamedTuple):
    """The part of an order event the statistics need."""

    order_id: str
    store_id: str
    created_at_ms: int
    items: int  # sum of quantities
    total: int  # minor units


class InvalidOrder(ValueError):
    """The event breaks the contract; ``str(exc)`` is the reason sent to the dead-letter topic."""


def _text(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidOrder(f"{name} must be a non-empty string")
    if len(value) > MAX_ID_LEN:
        raise InvalidOrder(f"{name} is longer than {MAX_ID_LEN} characters")
    return value


def _int(value: Any, name: str, low: int, high: int) -> int:
    # bool is an int subclass and a float is never money: both are refused by name.
    if type(value) is not int:
        raise InvalidOrder(f"{name} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidOrder(f"{name} must be between {low} and {high}, got {value}")
    return value


def _item_count(items: Any) -> int:
    """Sum of quantities, checking every item (inlined checks: this runs per item)."""
    if type(items) is not list:
        raise InvalidOrder("items must be a list")
    if len(items) > MAX_ITEMS:
        raise InvalidOrder(f"items has {len(items)} entries, more than {MAX_ITEMS}")
    count = 0
    for i, item in enumerate(items):
        if type(item) is not dict:
            raise InvalidOrder(f"items[{i}] must be an object")
        sku, qty, price = item.get("sku"), item.get("qty"), item.get("unit_price")
        if type(sku) is not str or not sku:
            raise InvalidOrder(f"items[{i}].sku must be a non-empty string")
        if type(qty) is not int or not 1 <= qty <= MAX_QTY:
            _int(qty, f"items[{i}].qty", 1, MAX_QTY)
        if type(price) is not int or not 0 <= price <= MAX_MONEY:
            _int(price, f"items[{i}].unit_price", 0, MAX_MONEY)
        count += qty
    return count


def validate_order(doc: Any, max_time_ms: int) -> Order:
    """Check a decoded event against the contract; unknown extra fields are ignored."""
    if not isinstance(doc, dict):
        raise InvalidOrder(f"event must be a JSON object, got {type(doc).__name__}")
    order_id = _text(doc, "order_id")
    store_id = _text(doc, "store_id")
    created_at = doc.get("created_at")
    try:
        created_ms = parse_iso_ms(created_at)
    except (ValueError, TypeError) as exc:
        raise InvalidOrder(f"created_at is not an ISO-8601 time with offset: {exc}") from None
    if not MIN_TIME_MS <= created_ms <= max_time_ms:
        raise InvalidOrder(f"created_at {created_at!r} is outside the accepted range "
                           "(2000-01-01 .. 7 days ahead of now)")
    items = _item_count(doc.get("items"))
    total = _int(doc.get("total"), "total", 0, MAX_MONEY)
    currency = doc.get("currency")
    if currency is not None and not isinstance(currency, str):
        raise InvalidOrder("currency must be a string when present")
    return Order(order_id, store_id, created_ms, items, total)


def decode_order(raw: bytes | None, max_time_ms: int) -> Order:
    """Bytes from Kafka -> Order, or InvalidOrder naming what is wrong."""
    if raw is None:
        raise InvalidOrder("event has no value (null record)")
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidOrder(f"event is {len(raw)} bytes, more than {MAX_EVENT_BYTES}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidOrder(f"not valid UTF-8 JSON: {exc}") from None
    return validate_order(doc, max_time_ms)
