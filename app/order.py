"""The order event: decoding and validation, pure functions with no Faust or Kafka import.

The contract is the README's "The event", or the shop's own shape declared by an EventMapping
(README, "Your own event shape"; the default mapping takes today's fast path). Anything that
does not meet it raises InvalidOrder with a reason that goes to the dead-letter topic verbatim,
so reasons are written for the person who has to fix the producer.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Context, Decimal
from math import isfinite
from typing import Any, NamedTuple

import orjson

from app.currency import NO_CURRENCY, NO_MINOR_UNIT, to_minor
from app.event_mapping import DEFAULT_MAPPING, EventMapping
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
    currency: str = NO_CURRENCY  # upper case as sent, or the mapping's default_currency
    # Sum of qty x unit_price, or -1 when the event carries no item prices (a mapped shape).
    # Kept beside ``total`` so the pipeline can count disagreements; ``total`` is what counts.
    items_value: int = -1


# Order(...) without the keyword handling of NamedTuple.__new__: half the cost, per event.
_new_order = tuple.__new__


class InvalidOrder(ValueError):
    """The event breaks the contract; ``str(exc)`` is the reason sent to the dead-letter topic."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _no_control(value: str, name: str) -> None:
    """Ids with control characters (NUL included) break logs, keys and URLs: refused."""
    if not value.isprintable():  # fast; isprintable is False for more than controls
        found = _CONTROL.search(value)
        if found:
            raise InvalidOrder(f"{name} contains the control character "
                               f"U+{ord(found.group()):04X} at position {found.start()}")


def _text(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidOrder(f"{name} must be a non-empty string")
    if len(value) > MAX_ID_LEN:
        raise InvalidOrder(f"{name} is longer than {MAX_ID_LEN} characters")
    _no_control(value, name)
    return value


def _int(value: Any, name: str, low: int, high: int) -> int:
    # bool is an int subclass and a float is never money: both are refused by name.
    if type(value) is not int:
        if type(value) is float and abs(value) >= 2.0**63:  # orjson reads such ints as floats
            raise InvalidOrder(f"{name} must be an integer between {low} and {high}, got a "
                               "number beyond 64 bits")
        raise InvalidOrder(f"{name} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidOrder(f"{name} must be between {low} and {high}, got {value}")
    return value


def _item_count(items: Any) -> tuple[int, int]:
    """(sum of quantities, sum of qty x unit_price), checking every item (inlined checks:
    this runs per item)."""
    if type(items) is not list:
        raise InvalidOrder("items must be a list")
    if len(items) > MAX_ITEMS:
        raise InvalidOrder(f"items has {len(items)} entries, more than {MAX_ITEMS}")
    count = value = 0
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
        value += qty * price
    return count, value


def validate_order(doc: Any, max_time_ms: int, mapping: EventMapping = DEFAULT_MAPPING,
                   record_ts_ms: int | None = None) -> Order:
    """Check a decoded event against the contract (the README's, or the shop's own
    ``mapping``); unknown extra fields are ignored. ``record_ts_ms`` is the Kafka record
    timestamp, the event time when the mapping's time_format is "record"."""
    if mapping is DEFAULT_MAPPING or mapping.is_default:
        return _validate_default(doc, max_time_ms)
    return _validate_mapped(doc, max_time_ms, mapping, record_ts_ms)


def _validate_default(doc: Any, max_time_ms: int) -> Order:
    """Today's contract, the fast path (README, "The event")."""
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
    items, items_value = _item_count(doc.get("items"))
    total = _int(doc.get("total"), "total", 0, MAX_MONEY)
    currency = doc.get("currency")
    if currency is not None and not isinstance(currency, str):
        raise InvalidOrder("currency must be a string when present")
    return _new_order(Order, (order_id, store_id, created_ms, items, total,
                              NO_CURRENCY if not currency else currency.upper(), items_value))


def decode_order(raw: bytes | None, max_time_ms: int, mapping: EventMapping = DEFAULT_MAPPING,
                 record_ts_ms: int | None = None) -> Order:
    """Bytes from Kafka -> Order, or InvalidOrder naming what is wrong.

    ``mapping`` is the shop's event shape (Settings.mapping); ``record_ts_ms`` the record's
    Kafka timestamp in epoch milliseconds (used only with time_format "record")."""
    if raw is None:
        raise InvalidOrder("event has no value (null record)")
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidOrder(f"event is {len(raw)} bytes, more than {MAX_EVENT_BYTES}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidOrder(f"not valid UTF-8 JSON: {exc}") from None
    if mapping is DEFAULT_MAPPING or mapping.is_default:
        return _validate_default(doc, max_time_ms)
    return _validate_mapped(doc, max_time_ms, mapping, record_ts_ms)


# --- the shop's own event shape (README, "Your own event shape") --------------------------

_DECIMAL = re.compile(r"-?[0-9]{1,30}(?:\.[0-9]{1,30})?")  # "12.50"; no exponent, no spaces
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_EXACT = Context(prec=80)  # enough for any _DECIMAL or float repr times 1000, exactly
_INT_ID_LIMIT = 10 ** (MAX_ID_LEN - 1)  # its decimal string fits MAX_ID_LEN
_RANGE = "is outside the accepted range (2000-01-01 .. 7 days ahead of now)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: Any) -> str:
    return "nothing (missing or null)" if value is None else type(value).__name__


def _id(value: Any, path: str) -> str:
    """A string id, or an integer one as its decimal string (shops use numeric ids)."""
    if type(value) is int and -_INT_ID_LIMIT < value < _INT_ID_LIMIT:
        return str(value)
    if type(value) is not str or not value.strip():
        raise InvalidOrder(f"{path} must be a non-empty string or an integer, "
                           f"got {_kind(value) if type(value) is not str else 'an empty one'}")
    if len(value) > MAX_ID_LEN:
        raise InvalidOrder(f"{path} is longer than {MAX_ID_LEN} characters")
    _no_control(value, path)
    return value


def _decimal(value: Any) -> Decimal | None:
    """A JSON number or a plain decimal string as an exact Decimal; None if it is neither.
    A float is taken by its shortest repr, the decimal the producer wrote (orjson round-trips)."""
    kind = type(value)
    if kind is int:
        return Decimal(value)
    if kind is float:
        return Decimal(repr(value)) if isfinite(value) else None
    if kind is str and _DECIMAL.fullmatch(value):
        return Decimal(value)
    return None


def _event_time(doc: dict, m: EventMapping, max_time_ms: int, record_ts_ms: int | None) -> int:
    fmt, path = m.time_format, m.created_at
    if fmt == "record":
        if record_ts_ms is None or record_ts_ms < 0:
            raise InvalidOrder("the Kafka record has no timestamp (the event time, "
                               "ORDERSTATS_TIME_FORMAT=record)")
        record_ts_ms = round(record_ts_ms)  # an int; tolerate a float from a caller
        if not MIN_TIME_MS <= record_ts_ms <= max_time_ms:
            raise InvalidOrder(f"the record timestamp {record_ts_ms} (epoch ms) {_RANGE}")
        return record_ts_ms
    value = m.get_created_at(doc)
    hint = ""
    if fmt == "iso":
        try:
            ms = parse_iso_ms(value)
        except (ValueError, TypeError) as exc:
            raise InvalidOrder(f"{path} is not an ISO-8601 time with offset: {exc}") from None
    elif fmt == "epoch_ms":
        if type(value) is not int:
            raise InvalidOrder(f"{path} must be epoch milliseconds (an integer), "
                               f"got {_kind(value)}")
        ms = value
        if MIN_TIME_MS // 1000 <= ms <= max_time_ms // 1000:
            hint = " (it looks like epoch seconds: ORDERSTATS_TIME_FORMAT=epoch_s)"
    else:  # epoch_s
        seconds = _decimal(value)
        if seconds is None:
            raise InvalidOrder(f"{path} must be epoch seconds (a number or a decimal string), "
                               f"got {_kind(value)}")
        ms = int(_EXACT.multiply(seconds, 1000).to_integral_value(ROUND_HALF_EVEN))
        if MIN_TIME_MS * 1000 <= ms <= max_time_ms * 1000:
            hint = " (it looks like epoch milliseconds: ORDERSTATS_TIME_FORMAT=epoch_ms)"
    if not MIN_TIME_MS <= ms <= max_time_ms:
        raise InvalidOrder(f"{path} {_short(value)} {_RANGE}{hint}")
    return ms


def _mapped_items(items: Any, m: EventMapping) -> int:
    path, qty_path, get_qty = m.items, m.item_qty, m.get_item_qty
    if type(items) is not list:
        raise InvalidOrder(f"{path} must be a list, got {_kind(items)}")
    if len(items) > MAX_ITEMS:
        raise InvalidOrder(f"{path} has {len(items)} entries, more than {MAX_ITEMS}")
    count = 0
    for i, item in enumerate(items):
        if type(item) is not dict:
            raise InvalidOrder(f"{path}[{i}] must be an object")
        qty = get_qty(item)
        if type(qty) is not int or not 1 <= qty <= MAX_QTY:
            _int(qty, f"{path}[{i}].{qty_path}", 1, MAX_QTY)
        count += qty
    return count


def _currency(doc: dict, m: EventMapping) -> str:
    if not m.currency:
        return m.default_currency
    value = m.get_currency(doc)
    if value is None or value == "":
        return m.default_currency
    if type(value) is not str or not _CURRENCY.fullmatch(value):
        raise InvalidOrder(f"{m.currency} must be a currency code of 3 letters A-Z, "
                           f"got {_short(value)}")
    return value.upper()


def _money(value: Any, m: EventMapping, currency: str) -> int:
    path = m.total
    if m.money == "minor":
        return _int(value, path, 0, MAX_MONEY)
    amount = _decimal(value)
    if amount is None:
        raise InvalidOrder(f'{path} must be a decimal number or a string like "12.50" in major '
                           f"units, got {_kind(value) if value is None else _short(value)}")
    if currency in NO_MINOR_UNIT:
        if currency == NO_CURRENCY:
            raise InvalidOrder(f"{path} is in major units but the event names no currency "
                               f"({m.currency or 'no currency field'}; no "
                               "ORDERSTATS_DEFAULT_CURRENCY)")
        raise InvalidOrder(f"{path} is in major units but {currency} has no minor unit")
    try:
        minor = to_minor(amount, currency)
    except ValueError as exc:
        raise InvalidOrder(f"{path} {exc}") from None
    if not 0 <= minor <= MAX_MONEY:
        raise InvalidOrder(f"{path} must be between 0 and {MAX_MONEY} minor units, "
                           f"got {amount} {currency} ({minor})")
    return minor


def _validate_mapped(doc: Any, max_time_ms: int, m: EventMapping,
                     record_ts_ms: int | None) -> Order:
    """The same contract read through the shop's mapping (README, "Your own event shape")."""
    if not isinstance(doc, dict):
        raise InvalidOrder(f"event must be a JSON object, got {type(doc).__name__}")
    order_id = _id(m.get_order_id(doc), m.order_id)
    store_id = _id(m.get_store_id(doc), m.store_id)
    created_ms = _event_time(doc, m, max_time_ms, record_ts_ms)
    items = _mapped_items(m.get_items(doc), m) if m.items else 0
    currency = _currency(doc, m)
    total = _money(m.get_total(doc), m, currency)
    return _new_order(Order, (order_id, store_id, created_ms, items, total, currency, -1))
