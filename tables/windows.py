"""Tumbling windows by event time: half-open [start, end); the base size aligned to the
epoch, the rollups (hours, days) to the shop's calendar.

One value object holds the size and the retention together, so that no caller can pair the
size of one configuration with the retention of another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

class _Size(Protocol):  # app.calendar.WindowSize
    name: str
    seconds: int
    epoch_aligned: bool


class _Spec(Protocol):  # app.window_config.RollupSpec
    size: _Size
    retention_s: int


class _Calendar(Protocol):  # app.calendar.Calendar (built by agents/rollups.py)
    tz_name: str

    def bounds(self, size: _Size, t_ms: int) -> tuple[int, int]: ...


RollupKey = tuple[str, int, str]  # (store_id, window start in epoch seconds, size name)


@dataclass(frozen=True)
class TumblingWindows:
    """Windows of ``size_s`` seconds, kept for ``retention_s`` seconds of wall-clock time."""

    size_s: int
    retention_s: int

    def __post_init__(self) -> None:
        if self.size_s < 1:
            raise ValueError(f"size_s must be at least 1 second, got {self.size_s}")
        if self.retention_s < self.size_s:
            raise ValueError(f"retention_s ({self.retention_s}) must be at least one window "
                             f"(size_s={self.size_s})")

    def start_s(self, epoch_ms: int) -> int:
        """Start (epoch seconds) of the window holding the instant ``epoch_ms``."""
        return window_start_s(epoch_ms, self.size_s)

    def late_cutoff_ms(self, now_ms: int) -> int:
        """Orders created before this instant are late: kept in totals, left out of windows."""
        return now_ms - self.retention_s * 1000

    def is_retained(self, start_s: int, cutoff_ms: int) -> bool:
        """A window is kept while any part of it is younger than the retention cutoff."""
        return (start_s + self.size_s) * 1000 > cutoff_ms


def window_start_s(epoch_ms: int, size_s: int) -> int:
    """Start (epoch seconds) of the window of ``size_s`` holding the instant ``epoch_ms``."""
    return (epoch_ms // 1000) // size_s * size_s


class Rollups:
    """The rollup sizes of a worker, placed by the shop's calendar (app/calendar.py).

    Why apart from :class:`TumblingWindows`: the base windows stay epoch-aligned under the
    key ``[store, start_s]`` they always had, so state and answers of the base size do not
    change; each rollup window is the key ``[store, start_s, "1h"]``. An order too old for
    the base windows (a late order) may still belong to a retained hour or day.
    """

    def __init__(self, rollups: Sequence[_Spec], calendar: _Calendar | None) -> None:
        self.rollups = tuple(rollups)
        self.calendar = calendar
        self.by_name = {r.size.name: r for r in self.rollups}
        # A span no rollup boundary falls inside: epoch-aligned sizes cut at their own
        # multiples, local ones at local wall-clock minutes (every zone's offset from UTC is
        # whole minutes since 1972).
        self.slot_ms = min((r.size.seconds * 1000 if r.size.epoch_aligned else 60_000
                            for r in self.rollups), default=60_000)

    def __bool__(self) -> bool:
        return bool(self.rollups)

    def cutoffs(self, now_ms: int) -> tuple[int, ...]:
        """Per rollup: windows ending at or before this instant are past their retention."""
        return tuple(now_ms - r.retention_s * 1000 for r in self.rollups)

    def keys(self, store: str, t_ms: int, cutoffs: tuple[int, ...]) -> Iterator[RollupKey]:
        """The retained rollup windows holding the instant ``t_ms``: (store, start_s, name)."""
        if not self.rollups:
            return
        bounds = self.calendar.bounds  # type: ignore[union-attr]
        for rollup, cutoff in zip(self.rollups, cutoffs):
            start, end = bounds(rollup.size, t_ms)
            if end > cutoff:
                yield (store, start // 1000, rollup.size.name)

    def end_ms(self, name: str, start_s: int) -> int:
        """End of the rollup window ``name`` starting at ``start_s`` (a local day may last
        23 or 25 hours)."""
        return self.calendar.bounds(self.by_name[name].size,  # type: ignore[union-attr]
                                    start_s * 1000)[1]

    def is_retained(self, name: str, start_s: int, now_ms: int) -> bool:
        rollup = self.by_name.get(name)
        if rollup is None:  # a size no longer configured: its windows go
            return False
        return self.end_ms(name, start_s) > now_ms - rollup.retention_s * 1000


NO_ROLLUPS = Rollups((), None)
