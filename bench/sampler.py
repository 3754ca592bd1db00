"""CPU time and RSS of processes, sampled from /proc so any time window can be cut out later.

The timed window of a contender (first record delivered .. offsets committed at the log end)
is only known once it is over, and it excludes start-up and the result read-back. So the
cumulative CPU time (utime + stime, all threads) and the RSS of the contender and of the
broker are sampled every ``interval`` seconds with wall-clock stamps; :meth:`cpu_s`
interpolates the cumulative CPU at both ends of a window, :meth:`peak_rss_mb` takes the
highest RSS sampled inside it.
"""

from __future__ import annotations

import bisect
import os
import threading
import time

TICK_S = 1 / os.sysconf("SC_CLK_TCK")
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def read_stat(pid: int) -> tuple[float, float]:
    """(CPU seconds so far, RSS MB) of ``pid`` from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # fields[0] is the state (field 3): utime, stime and rss are fields 14, 15 and 24.
    return (int(fields[11]) + int(fields[12])) * TICK_S, int(fields[21]) * PAGE_MB


class ProcSampler:
    """Samples (time, CPU s, RSS MB) of each of ``pids`` in a thread until :meth:`stop`."""

    def __init__(self, pids: dict[str, int], interval: float = 0.05) -> None:
        self.samples: dict[str, list[tuple[float, float, float]]] = {k: [] for k in pids}
        self._pids = pids
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proc-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        live = dict(self._pids)
        while live and not self._stop.is_set():
            for name, pid in list(live.items()):
                try:
                    cpu, rss = read_stat(pid)
                except (OSError, IndexError, ValueError):
                    del live[name]  # exited
                    continue
                self.samples[name].append((time.time(), cpu, rss))
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _cpu_at(self, name: str, at: float) -> float:
        s = self.samples[name]
        i = bisect.bisect_left(s, (at,))
        if i == 0:
            return s[0][1]
        if i == len(s):
            return s[-1][1]
        (t0, c0, _), (t1, c1, _) = s[i - 1], s[i]
        return c0 + (c1 - c0) * (at - t0) / (t1 - t0) if t1 > t0 else c1

    def cpu_s(self, name: str, start: float, end: float) -> float | None:
        """CPU seconds ``name`` used between wall-clock ``start`` and ``end``."""
        if not self.samples.get(name):
            return None
        return self._cpu_at(name, end) - self._cpu_at(name, start)

    def peak_rss_mb(self, name: str, start: float, end: float) -> float | None:
        """Highest RSS sampled in [start, end] (or the sample nearest to it)."""
        s = self.samples.get(name) or []
        inside = [rss for t, _, rss in s if start <= t <= end]
        if inside:
            return max(inside)
        if not s:
            return None
        return min(s, key=lambda x: min(abs(x[0] - start), abs(x[0] - end)))[2]
