"""One contender's run, cut to its timed window: one start and one end for every contender.

start: the first record delivered to the contender's own code (its clock);
end: its group's committed offsets at the log end (polled from the broker, bench/committed.py);
second column: the last record processed (the contender's clock, or orderstats' own record).
CPU (the contender's and the broker's) and peak RSS are cut to [start, end] (bench/sampler.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from bench.dataset import Dataset, Windows, diff_windows
from bench.sampler import ProcSampler


@dataclass
class Measurement:
    contender: str
    records: int
    first_at: float  # first record delivered to user code (wall clock)
    processed_at: float  # last record processed
    committed_at: float  # the group's committed offsets reached the log end
    cpu_s: float | None  # the contender's CPU in [first_at, committed_at]
    broker_cpu_s: float | None  # the broker's CPU in the same window
    peak_rss_mb: float | None  # the contender's, in the same window
    exact: bool
    problems: list[str] = field(default_factory=list)
    processed_source: str = "contender"  # where processed_at comes from

    @property
    def seconds(self) -> float:
        return self.committed_at - self.first_at

    @property
    def events_per_s(self) -> float:
        return self.records / self.seconds if self.exact and self.seconds > 0 else 0.0

    @property
    def processed_events_per_s(self) -> float:
        s = self.processed_at - self.first_at
        return self.records / s if self.exact and s > 0 else 0.0

    def per_million(self, cpu: float | None) -> float | None:
        return None if cpu is None else cpu * 1e6 / self.records

    def to_json(self) -> dict:
        return {**asdict(self), "problems": self.problems[:5], "seconds": self.seconds,
                "events_per_s": self.events_per_s,
                "processed_events_per_s": self.processed_events_per_s,
                "cpu_s_per_million": self.per_million(self.cpu_s),
                "broker_cpu_s_per_million": self.per_million(self.broker_cpu_s)}


def measure(name: str, data: Dataset, first: float, processed: float, committed: float,
            sampler: ProcSampler, windows: Windows, problems: list[str],
            processed_source: str = "contender") -> Measurement:
    """``problems`` so far (a timeout, a missing result), plus any window that differs
    from the truth (orders, revenue and items of every store and minute)."""
    problems = [*problems, *diff_windows(data.truth, windows)]
    if not problems and not (0 < first <= processed and first < committed):
        problems.append(f"no valid timed window (first {first}, last processed {processed}, "
                        f"committed {committed})")
    if problems:  # no timed window to cut the samples to
        return Measurement(name, data.records, first, processed, committed, None, None, None,
                           False, problems, processed_source)
    return Measurement(name, data.records, first, processed, committed,
                       sampler.cpu_s("contender", first, committed),
                       sampler.cpu_s("broker", first, committed),
                       sampler.peak_rss_mb("contender", first, committed),
                       True, problems, processed_source)
