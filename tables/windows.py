"""Tumbling-window arithmetic: windows are half-open [start, end), aligned to the epoch."""

from __future__ import annotations


def window_start_s(epoch_ms: int, size_s: int) -> int:
    """Start (epoch seconds) of the window holding the instant ``epoch_ms``."""
    return (epoch_ms // 1000) // size_s * size_s


def late_cutoff_ms(now_ms: int, retention_s: int) -> int:
    """Orders created before this instant are late: kept in totals, left out of windows."""
    return now_ms - retention_s * 1000


def is_retained(start_s: int, size_s: int, cutoff_ms: int) -> bool:
    """A window is kept while any part of it is younger than the retention cutoff."""
    return (start_s + size_s) * 1000 > cutoff_ms
