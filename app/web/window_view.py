"""One window size as the API sees it: ``?window=1h`` -> which keys, which bounds.

The base size (``ORDERSTATS_WINDOW_SIZE_S``, epoch-aligned, keys ``[store, start]``) and
each rollup (local calendar, keys ``[store, start, "1h"]``, tables/windows.py) answer the
same questions here, so the reader has one code path for every size.
"""

from __future__ import annotations

from typing import Any

from app.calendar import base_name
from app.web.params import ApiError
from tables import keys
from tables.windows import Rollups, TumblingWindows


class WindowView:
    """Bounds and keys of one size. ``rollup`` None: the base size."""

    def __init__(self, base: TumblingWindows, rollups: Rollups, rollup: str | None) -> None:
        self.base, self.rollups, self.rollup = base, rollups, rollup
        self.name = rollup or base_name(base.size_s)
        self.size_s = base.size_s if rollup is None else rollups.by_name[rollup].size.seconds

    def bounds(self, t_ms: int) -> tuple[int, int]:
        """[start_s, end_s) of the window holding ``t_ms``."""
        if self.rollup is None:
            start = self.base.start_s(t_ms)
            return start, start + self.base.size_s
        start_ms, end_ms = self.rollups.calendar.bounds(self.rollups.by_name[self.rollup].size,
                                                        t_ms)
        return start_ms // 1000, end_ms // 1000

    def end_s(self, start_s: int) -> int:
        return self.bounds(start_s * 1000)[1]

    def previous_start(self, start_s: int) -> int:
        return self.bounds(start_s * 1000 - 1)[0]

    def key(self, store_id: str, start_s: int) -> list:
        return keys.window_key(store_id, start_s, self.rollup)

    def owns(self, key: list) -> bool:
        """Is this stored window key one of this size's?"""
        return len(key) == 2 if self.rollup is None else len(key) == 3 and key[2] == self.rollup

    def is_retained(self, start_s: int, now_ms: int) -> bool:
        if self.rollup is None:
            return self.base.is_retained(start_s, self.base.late_cutoff_ms(now_ms))
        return self.rollups.is_retained(self.rollup, start_s, now_ms)

    def describe(self) -> dict[str, Any]:
        """What an answer says about its size: name and nominal seconds (a local day may
        last 23 or 25 hours; each window's own start and end say so)."""
        out: dict[str, Any] = {"window": self.name, "window_size_s": self.size_s}
        if self.rollup is not None:
            out["timezone"] = self.rollups.calendar.tz_name
        return out


class WindowChoice:
    """Every size a worker keeps, by the name ``?window=`` takes."""

    def __init__(self, base: TumblingWindows, rollups: Rollups) -> None:
        self.base = WindowView(base, rollups, None)
        self.views = {self.base.name: self.base,
                      **{name: WindowView(base, rollups, name) for name in rollups.by_name}}

    @property
    def rollup_views(self) -> list[WindowView]:
        return [v for v in self.views.values() if v.rollup is not None]

    def pick(self, raw: str | None) -> WindowView:
        """``?window=`` (absent: the base size); unknown names are a 400 listing the known."""
        if raw is None or raw == "":
            return self.base
        view = self.views.get(raw)
        if view is None:
            shown = raw if len(raw) <= 20 else raw[:20] + "..."
            raise ApiError(400, "bad_parameter", f"window must be one of "
                           f"{', '.join(self.views)}, got {shown!r}")
        return view
