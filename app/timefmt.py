"""ISO-8601 <-> epoch milliseconds, the only time formats the product speaks."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache


def parse_iso_ms(text: str) -> int:
    """Parse an ISO-8601 timestamp that carries a UTC offset into epoch milliseconds.

    Raises ValueError with a readable message: naive times are ambiguous, so they are refused.
    """
    if not isinstance(text, str) or not text:
        raise ValueError("expected an ISO-8601 string")
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset (append Z or +00:00)")
    return round(dt.timestamp() * 1000)


@lru_cache(maxsize=256)
def format_iso_ms(epoch_ms: int) -> str:
    """Epoch milliseconds -> ``2026-11-22T12:00:00.123Z`` (UTC, milliseconds, Z).

    Cached (a few recent values): the windows a batch closes share its close time."""
    dt = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


@lru_cache(maxsize=16_384)
def format_iso_s(epoch_s: int) -> str:
    """Epoch seconds -> ``2026-11-22T12:00:00Z`` (window boundaries are whole seconds).

    Cached: every closed window's result names its start and end, and the same few window
    boundaries recur for every store (strftime was 3% of the worker's time)."""
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
