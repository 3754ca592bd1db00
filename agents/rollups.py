"""The worker's rollup windows from its configuration: the one place that pairs the
configured sizes (app/window_config.py) with the shop's calendar (app/calendar.py) for
tables/windows.py, which stays free of both."""

from __future__ import annotations

from app.calendar import Calendar
from app.window_config import WindowConfig
from tables.windows import Rollups


def rollups_of(config: WindowConfig) -> Rollups:
    """One calendar per caller: its caches are not shared between threads."""
    return Rollups(config.rollups, Calendar(config.timezone))
