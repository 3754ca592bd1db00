"""Where the fields of a shop's own order event are, and how its time and money are written.

Pure (stdlib only). The default mapping is the README's "The event"; a shop whose events look
different declares its own with ``ORDERSTATS_FIELD_*`` variables or a small TOML file named by
``ORDERSTATS_MAPPING_FILE``, and ``app.order`` applies it (README, "Your own event shape").
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping

from app.currency import NO_CURRENCY

Getter = Callable[[dict], Any]

TIME_FORMATS = ("iso", "epoch_ms", "epoch_s", "record")
MONEY_FORMATS = ("minor", "major")
NONE = "-"  # in a variable: "the event has no such field" (an empty variable means unset)

_CODE = re.compile(r"[A-Za-z]{3}")

# field name -> variable; the TOML key is the variable without ORDERSTATS_ / FIELD_, lower case
VARIABLES = {
    "store_id": "ORDERSTATS_FIELD_STORE_ID",
    "order_id": "ORDERSTATS_FIELD_ORDER_ID",
    "created_at": "ORDERSTATS_FIELD_CREATED_AT",
    "items": "ORDERSTATS_FIELD_ITEMS",
    "item_qty": "ORDERSTATS_FIELD_ITEM_QTY",
    "total": "ORDERSTATS_FIELD_TOTAL",
    "currency": "ORDERSTATS_FIELD_CURRENCY",
    "time_format": "ORDERSTATS_TIME_FORMAT",
    "money": "ORDERSTATS_MONEY_FORMAT",
    "default_currency": "ORDERSTATS_DEFAULT_CURRENCY",
}
FILE_VARIABLE = "ORDERSTATS_MAPPING_FILE"
_FILE_KEYS = {v.removeprefix("ORDERSTATS_").removeprefix("FIELD_").lower(): f
              for f, v in VARIABLES.items()} | {"money": "money"}  # money_format or money
_OPTIONAL = ("items", "currency")  # may be "" = the event has no such field


def compile_path(path: str) -> Getter:
    """``"order.shop.id"`` -> a function returning ``doc["order"]["shop"]["id"]``, or None when
    any step is missing or not an object. ``""`` -> always None. ``doc`` must be a dict."""
    if not path:
        return lambda doc: None
    parts = path.split(".")
    if len(parts) == 1:
        return lambda doc: doc.get(path)
    if len(parts) == 2:
        a, b = parts

        def get2(doc: dict) -> Any:
            v = doc.get(a)
            return v.get(b) if type(v) is dict else None
        return get2

    def get(doc: dict) -> Any:
        v: Any = doc
        for part in parts:
            if type(v) is not dict:
                return None
            v = v.get(part)
        return v
    return get


def _problem(name: str, value: str, time_format: str = "iso") -> str | None:
    """What is wrong with ``value`` for field ``name``, or None."""
    if not isinstance(value, str):
        return "must be a string"
    if name == "time_format":
        return None if value in TIME_FORMATS else "must be one of " + ", ".join(TIME_FORMATS)
    if name == "money":
        return None if value in MONEY_FORMATS else "must be one of " + ", ".join(MONEY_FORMATS)
    if name == "default_currency":
        return None if _CODE.fullmatch(value) else "must be a currency code of 3 letters A-Z"
    if value == "":
        if name in _OPTIONAL or (name == "created_at" and time_format == "record"):
            return None
        return "the event must have this field (only items and currency may be none)"
    if any(part == "" or part != part.strip() for part in value.split(".")):
        return "must be a field name or a dotted path like order.shop.id (no empty parts)"
    return None


@dataclass(frozen=True)
class EventMapping:
    """Field paths into the event (dotted = nested objects) and the time and money formats."""

    store_id: str = "store_id"
    order_id: str = "order_id"
    created_at: str = "created_at"
    items: str = "items"  # "" = the event has no items (items count 0)
    item_qty: str = "qty"  # inside each item
    total: str = "total"
    currency: str = "currency"  # "" = the event names no currency
    time_format: str = "iso"  # iso | epoch_ms | epoch_s | record (the Kafka record timestamp)
    money: str = "minor"  # minor (integer minor units) | major ("12.50", 12.5)
    default_currency: str = NO_CURRENCY  # when the event has no currency

    def __post_init__(self) -> None:
        for f in fields(self):
            problem = _problem(f.name, getattr(self, f.name), self.time_format)
            if problem:
                raise ValueError(f"event mapping {f.name}={getattr(self, f.name)!r}: {problem}")
        set_ = object.__setattr__  # frozen: the derived attributes are set once, here
        set_(self, "default_currency", self.default_currency.upper())
        set_(self, "_default", all(getattr(self, f.name) == f.default for f in fields(self)))
        # the precompiled getters: get_store_id, get_order_id, ..., get_currency (Getter each)
        for name in ("store_id", "order_id", "created_at", "items", "item_qty", "total",
                     "currency"):
            set_(self, "get_" + name, compile_path(getattr(self, name)))

    @property
    def is_default(self) -> bool:
        """True for today's contract (README, "The event"): the fast path applies."""
        return self._default  # type: ignore[attr-defined,no-any-return]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "EventMapping":
        """Read ``ORDERSTATS_MAPPING_FILE`` (a TOML ``[mapping]`` table), then the variables,
        which override it. ValueError names the variable, or the file and key."""
        values: dict[str, tuple[str, str, str]] = {}  # name -> (value, source, as written)
        path = env.get(FILE_VARIABLE, "")
        if path:
            values.update(_read_file(path))
        for name, var in VARIABLES.items():
            raw = env.get(var, "")
            if raw:
                values[name] = ("" if raw == NONE else raw, var, raw)
        if not values:
            return DEFAULT_MAPPING
        time_format = values["time_format"][0] if "time_format" in values else cls.time_format
        for name, (value, source, written) in values.items():
            problem = _problem(name, value, time_format)
            if problem:
                raise ValueError(f"{source}={written!r}: {problem}")
        mapping = cls(**{name: value for name, (value, _s, _w) in values.items()})
        return DEFAULT_MAPPING if mapping.is_default else mapping


def _read_file(path: str) -> dict[str, tuple[str, str, str]]:
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ValueError(f"{FILE_VARIABLE}={path!r}: cannot read it: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{FILE_VARIABLE}={path!r}: not valid TOML: {exc}") from None
    table = doc.get("mapping")
    if not isinstance(table, dict):
        raise ValueError(f"{path}: needs a [mapping] table")
    unknown = (set(doc) - {"mapping"}) | (set(table) - set(_FILE_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; [mapping] "
                         f"takes {', '.join(k for k in _FILE_KEYS if k != 'money')}")
    values: dict[str, tuple[str, str, str]] = {}
    for key, value in table.items():
        name, source = _FILE_KEYS[key], f"{path} [mapping] {key}"
        if name in values:
            raise ValueError(f"{path} [mapping]: money and money_format are the same setting")
        if not isinstance(value, str):
            raise ValueError(f"{source}={value!r}: must be a string")
        values[name] = ("" if value == NONE else value, source, value)
    return values


DEFAULT_MAPPING = EventMapping()
