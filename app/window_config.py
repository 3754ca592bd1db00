"""Which window sizes a worker keeps, in which time zone, for how long, and when they close.

``ORDERSTATS_WINDOWS`` (default ``1m,1h,1d``): the smallest size is the *base* window (the
one ``ORDERSTATS_WINDOW_SIZE_S`` and ``ORDERSTATS_RETENTION_S`` always described: UTC-epoch
aligned, what the API answers without ``?window=``); every larger one is a *rollup* aligned
to ``ORDERSTATS_TIMEZONE`` (app/calendar.py), kept ``ORDERSTATS_ROLLUP_RETENTION``
(default ``1h=7d,1d=90d``; sizes not named keep 7 days, days 90). Parsed here, once, so a
bad value is one line at start-up (app/settings.py), never a traceback in a batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from app.calendar import DAY_S, Calendar, WindowSize, parse_window_sizes

DEFAULT_ROLLUPS = "1h,1d"
ROLLUP_DAYS_KEPT = 7  # hours and other sub-day rollups
DAY_ROLLUP_DAYS_KEPT = 90  # day windows: a season of "today"s
_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": DAY_S}


@dataclass(frozen=True)
class RollupSpec:
    size: WindowSize
    retention_s: int


@dataclass(frozen=True)
class WindowConfig:
    """Rollup sizes (larger than the base window), their zone, and the close grace."""

    rollups: tuple[RollupSpec, ...] = ()
    timezone: str = "UTC"
    grace_s: int = 60

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.size.name for r in self.rollups)


def _duration_s(name: str, text: str) -> int:
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match[1]) < 1:
        raise ValueError(f"{name}: {text!r} is not a duration such as '36h', '7d' or '90d'")
    return int(match[1]) * _UNIT_S[match[2]]


def _retentions(text: str, sizes: Mapping[str, WindowSize]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        size, sep, duration = item.partition("=")
        size = size.strip()
        if not sep:
            raise ValueError(f"ORDERSTATS_ROLLUP_RETENTION item {item!r}: write SIZE=DURATION, "
                             "e.g. '1h=7d'")
        if size not in sizes:
            raise ValueError(f"ORDERSTATS_ROLLUP_RETENTION names {size!r}, which is not a rollup "
                             f"size of ORDERSTATS_WINDOWS ({', '.join(sizes) or 'none'})")
        seconds = _duration_s("ORDERSTATS_ROLLUP_RETENTION", duration)
        if seconds < sizes[size].seconds:
            raise ValueError(f"ORDERSTATS_ROLLUP_RETENTION {item!r}: must keep at least one "
                             "window")
        out[size] = seconds
    return out


def window_config(env: Mapping[str, str], base_s: int | None) -> tuple[int | None, WindowConfig]:
    """(the base window size in seconds if ORDERSTATS_WINDOWS names it, the config).

    ``base_s``: ORDERSTATS_WINDOW_SIZE_S when set. Without ORDERSTATS_WINDOWS the rollups are
    1h and 1d above the base size; with it, its smallest size is the base and must agree
    with ORDERSTATS_WINDOW_SIZE_S if both are set. Raises ValueError with one line."""
    text = (env.get("ORDERSTATS_WINDOWS") or "").strip()
    named_base = None
    if text:
        sizes = parse_window_sizes(text)
        named_base = sizes[0].seconds
        if base_s is not None and base_s != named_base:
            raise ValueError(f"ORDERSTATS_WINDOWS={text!r} starts with {sizes[0].name} but "
                             f"ORDERSTATS_WINDOW_SIZE_S={base_s}: set one of them")
        rollups = sizes[1:]
    else:
        floor = base_s if base_s is not None else 60
        rollups = tuple(s for s in parse_window_sizes(DEFAULT_ROLLUPS) if s.seconds > floor)
    timezone = (env.get("ORDERSTATS_TIMEZONE") or "UTC").strip()
    Calendar(timezone)  # ValueError with the reason when unknown
    by_name = {s.name: s for s in rollups}
    kept = _retentions(env.get("ORDERSTATS_ROLLUP_RETENTION") or "", by_name)
    grace_text = (env.get("ORDERSTATS_GRACE_S") or "60").strip()
    if not grace_text.isdigit() or int(grace_text) > 7 * DAY_S:
        raise ValueError(f"ORDERSTATS_GRACE_S={grace_text!r}: seconds, 0..604800")
    specs = tuple(RollupSpec(s, kept.get(s.name, (DAY_ROLLUP_DAYS_KEPT if s.is_calendar_day
                                                   else ROLLUP_DAYS_KEPT) * DAY_S))
                  for s in rollups)
    return named_base, WindowConfig(specs, timezone, int(grace_text))
