"""Realistic order streams and the exact statistics they must produce (the ground truth).

Pure generation (no Kafka): :class:`OrderGenerator` yields ``(key, value)`` byte pairs and
records what the stats must show in :class:`GroundTruth`; ``orderstats generate``
(app/cli/generate.py) produces them to Kafka.
Store popularity is Zipf-skewed, everything is reproducible from the seed.
"""

from __future__ import annotations

import base64
import bisect
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import accumulate
from typing import Iterator

import orjson

# The ground truth shares no code with what it checks (tables/windows.py, app/timefmt.py):
# its window arithmetic and time formats are written out here, independently.


def _iso_s(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_ms(epoch_ms: int) -> str:
    whole, ms = divmod(epoch_ms, 1000)
    return datetime.fromtimestamp(whole, tz=timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S") + f".{ms:03d}Z"


def _window_start(epoch_ms: int, size_s: int) -> int:
    seconds = epoch_ms // 1000
    return seconds - seconds % size_s


KEY_STYLES = ("raw", "json", "none", "mixed")
Headers = list[tuple[str, bytes]]  # Kafka record headers, as aiokafka takes them


@dataclass
class GeneratorConfig:
    stores: int = 50
    zipf_s: float = 1.1
    seed: int = 42
    duplicate_share: float = 0.0
    invalid_share: float = 0.0
    late_share: float = 0.0
    window_size_s: int = 60
    retention_s: int = 24 * 3600
    keys: str = "raw"  # raw | json | none | mixed: how the record key is spelled, as producers do
    record_invalid: bool = True  # keep each invalid event's bytes in the truth (a demo run
    # without --truth turns it off: the list would grow for as long as the generator runs)

    def __post_init__(self) -> None:
        if self.stores < 1:
            raise ValueError("stores must be at least 1")
        for name in ("duplicate_share", "invalid_share", "late_share"):
            share = getattr(self, name)
            if not 0.0 <= share < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {share}")
        if self.keys not in KEY_STYLES:
            raise ValueError(f"keys must be one of {', '.join(KEY_STYLES)}, got {self.keys!r}")
        if self.zipf_s < 0:
            raise ValueError("zipf_s must be >= 0")


@dataclass
class GroundTruth:
    """What the live API must report once every produced event has been processed."""

    window_size_s: int
    stores: dict[str, dict] = field(default_factory=dict)
    produced: int = 0
    valid: int = 0
    duplicates: int = 0
    invalid: int = 0
    late: int = 0
    watermark_ms: int = 0  # the highest created_at of a counted order (the API's as_of)
    keep_invalid: bool = True
    # Each acknowledged invalid event as sent (key, value, headers): the dead-letter topic
    # must hold exactly these, byte for byte.
    invalid_events: list[dict] = field(default_factory=list)

    def add(self, store_id: str, created_ms: int, total: int, items: int, late: bool) -> None:
        s = self.stores.setdefault(store_id, {"totals": {"orders": 0, "revenue": 0, "items": 0,
                                                          "late": 0}, "windows": {}})
        t = s["totals"]
        t["orders"] += 1
        t["revenue"] += total
        t["items"] += items
        t["late"] += late
        self.valid += 1
        self.watermark_ms = max(self.watermark_ms, created_ms)
        if late:
            self.late += 1
            return
        start = _iso_s(_window_start(created_ms, self.window_size_s))
        w = s["windows"].setdefault(start, {"orders": 0, "revenue": 0, "items": 0})
        w["orders"] += 1
        w["revenue"] += total
        w["items"] += items

    def apply(self, effect: "Effect") -> None:
        """Count one event the broker acknowledged (``orderstats generate`` calls this per
        ack, so the truth holds exactly what is in the topic). The first acknowledged copy
        of an order counts; any later copy is a duplicate, whichever was generated first."""
        self.produced += 1
        if effect.store_id is None:
            self.invalid += 1
            if self.keep_invalid and effect.letter is not None:
                self.invalid_events.append(letter_json(*effect.letter))
        elif effect.applied:
            self.duplicates += 1
        else:
            effect.applied = True
            self.add(effect.store_id, effect.created_ms, effect.total, effect.items,
                     effect.late)

    def to_json(self) -> dict:
        return {"window_size_s": self.window_size_s, "produced": self.produced,
                "valid": self.valid, "duplicates": self.duplicates, "invalid": self.invalid,
                "late": self.late,
                "watermark": _iso_ms(self.watermark_ms) if self.watermark_ms else None,
                "stores": self.stores, "invalid_events": self.invalid_events}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def letter_json(key: bytes | None, value: bytes, headers: Headers) -> dict:
    """An invalid event as the truth file records it (bytes in base64)."""
    return {"key": None if key is None else b64(key), "value": b64(value),
            "headers": [[name, b64(v)] for name, v in headers]}


class Effect:
    """What one generated event adds to the truth once acknowledged (store_id None: invalid,
    ``letter`` its key, value and headers as sent). A re-sent duplicate carries its
    original's Effect, so the pair counts one order."""

    __slots__ = ("store_id", "created_ms", "total", "items", "late", "applied", "letter")

    def __init__(self, store_id: str | None = None, created_ms: int = 0, total: int = 0,
                 items: int = 0, late: bool = False,
                 letter: tuple[bytes | None, bytes, Headers] | None = None) -> None:
        self.store_id, self.created_ms, self.total = store_id, created_ms, total
        self.items, self.late, self.applied = items, late, False
        self.letter = letter

    @property
    def headers(self) -> Headers | None:
        """The record headers to send with the event (invalid ones carry some)."""
        return self.letter[2] if self.letter is not None else None

INVALID_KINDS = ("not_json", "not_object", "missing_store", "negative_total", "float_total",
                 "bad_time", "naive_time", "zero_qty", "too_many_items")


class OrderGenerator:
    """Yields encoded order events; ``truth`` follows along."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.store_ids = [f"s-{i:04d}" for i in range(config.stores)]
        weights = [1.0 / (rank ** config.zipf_s) for rank in range(1, config.stores + 1)]
        self._cumulative = list(accumulate(weights))
        self.truth = GroundTruth(config.window_size_s, keep_invalid=config.record_invalid)
        self._recent: deque[tuple[bytes | None, bytes, Effect]] = deque(maxlen=2000)
        self._seq = 0

    def _store(self) -> str:
        x = self.rng.random() * self._cumulative[-1]
        return self.store_ids[bisect.bisect_left(self._cumulative, x)]

    def _order(self, store_id: str, created_ms: int) -> dict:
        rng = self.rng
        items = [{"sku": f"SKU-{rng.randrange(500):03d}", "qty": rng.randint(1, 4),
                  "unit_price": rng.randrange(100, 5000, 10)}
                 for _ in range(rng.randint(1, 5))]
        self._seq += 1
        return {"order_id": f"o-{self.config.seed}-{self._seq:09d}", "store_id": store_id,
                "created_at": _iso_ms(created_ms), "items": items,
                "total": sum(i["qty"] * i["unit_price"] for i in items), "currency": "JPY",
                "channel": "web"}  # an extra field, as producers may add: kept and ignored

    def _invalid(self, store_id: str, created_ms: int) -> tuple[bytes, Headers]:
        """An invalid event's value and headers: a producer's own headers, which the
        dead-letter record must keep."""
        kind = self.rng.choice(INVALID_KINDS)
        headers = [("x-producer", b"orderstats-generate"), ("x-invalid-kind", kind.encode()),
                   ("x-seq", str(self._seq).encode())]
        return self._invalid_value(kind, store_id, created_ms), headers

    def _invalid_value(self, kind: str, store_id: str, created_ms: int) -> bytes:
        doc = self._order(store_id, created_ms)
        if kind == "not_json":
            return b"\xff{not json"
        if kind == "not_object":
            return orjson.dumps([doc])
        if kind == "missing_store":
            del doc["store_id"]
        elif kind == "negative_total":
            doc["total"] = -abs(doc["total"]) - 1
        elif kind == "float_total":
            doc["total"] = doc["total"] + 0.5
        elif kind == "bad_time":
            doc["created_at"] = "yesterday at noon"
        elif kind == "naive_time":
            doc["created_at"] = doc["created_at"].rstrip("Z")
        elif kind == "zero_qty":
            doc["items"][0]["qty"] = 0
        elif kind == "too_many_items":
            doc["items"] = doc["items"][:1] * 1001
        return orjson.dumps(doc)

    def _key(self, store_id: str) -> bytes | None:
        style = self.config.keys
        if style == "mixed":
            style = self.rng.choice(("raw", "json", "none"))
        return None if style == "none" else (
            store_id.encode() if style == "raw" else orjson.dumps(store_id))

    def event(self, created_ms: int, now_ms: int) -> tuple[bytes | None, bytes]:
        """One event created at ``created_ms``; lateness is judged against ``now_ms``.
        Counted in ``truth`` at once (pure use; see :meth:`next_event` for Kafka)."""
        key, value, effect = self.next_event(created_ms, now_ms)
        self.truth.apply(effect)
        return key, value

    def next_event(self, created_ms: int, now_ms: int) -> tuple[bytes | None, bytes, Effect]:
        """One event and its :class:`Effect`, *not* yet counted: the caller applies the
        effect to ``truth`` once the broker acknowledged the event."""
        cfg = self.config
        roll = self.rng.random()
        if roll < cfg.duplicate_share and self._recent:
            return self.rng.choice(self._recent)
        store_id = self._store()
        key = self._key(store_id)
        if roll < cfg.duplicate_share + cfg.invalid_share:
            value, headers = self._invalid(store_id, created_ms)
            return key, value, Effect(letter=(key, value, headers))
        late = roll < cfg.duplicate_share + cfg.invalid_share + cfg.late_share
        if late:
            # Far beyond the retention, so processing delays cannot move it across the line.
            created_ms = now_ms - cfg.retention_s * 1000 - self.rng.randint(
                3600_000, 48 * 3600_000)
        doc = self._order(store_id, created_ms)
        value = orjson.dumps(doc)
        effect = Effect(store_id, created_ms, doc["total"],
                        sum(i["qty"] for i in doc["items"]), late)
        self._recent.append((key, value, effect))
        return key, value, effect

    def events(self, count: int, start_ms: int, span_ms: int,
               now_ms: int) -> Iterator[tuple[bytes | None, bytes]]:
        """``count`` events with created_at spread evenly over [start, start + span)."""
        for key, value, effect in self.pending_events(count, start_ms, span_ms, now_ms):
            self.truth.apply(effect)
            yield key, value

    def pending_events(self, count: int, start_ms: int, span_ms: int,
                       now_ms: int) -> Iterator[tuple[bytes | None, bytes, Effect]]:
        """As :meth:`events`, each with its Effect, none counted yet."""
        for i in range(count):
            jitter = self.rng.randint(-2000, 2000)
            created = start_ms + (span_ms * i) // max(count, 1) + jitter
            yield self.next_event(max(created, start_ms), now_ms)
