"""The worker's rollup windows from its configuration: the one place that pairs the
configured sizes (app/window_config.py) with the shop's calendar (app/calendar.py) for
tables/windows.py, which stays free of both."""

from __future__ import annotations

from typing import Callable

from app.calendar import Calendar
from app.window_config import WindowConfig
from tables.windows import Rollups


def rollups_of(config: WindowConfig) -> Rollups:
    """One calendar per caller: its caches are not shared between threads."""
    return Rollups(config.rollups, Calendar(config.timezone))


def window_label(rollups: Rollups) -> Callable[[str, int], str | None]:
    """How the shop names a rollup window ("2026-11-23", "2026-11-23T09:00:00+09:00") for
    the published results; None for the base size (its start says it all)."""
    calendar = rollups.calendar

    def label(size: str, start_ms: int) -> str | None:
        spec = rollups.by_name.get(size)
        return None if spec is None or calendar is None else calendar.local_label(
            spec.size, start_ms)  # type: ignore[attr-defined]
    return label
