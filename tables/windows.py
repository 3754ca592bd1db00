"""Tumbling windows by event time: half-open [start, end), aligned to the epoch.

One value object holds the size and the retention together, so that no caller can pair the
size of one configuration with the retention of another.
"""

from __future__ import annotations

from dataclasses import dataclass


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
