"""What every contender shares: its command line, its release, and the result file it writes.

A contender consumes the dataset like a real job, committing offsets to its group as its
framework does, and never stops on its own: the runner ends the timed window when the group's
committed offsets reach the log end (bench/committed.py, the same for all), then closes the
contender's stdin; only then does the contender read its state back and write RESULT.json.
So reading the result costs nothing inside the timed window.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import orjson


@dataclass
class ContenderArgs:
    broker: str
    topic: str
    group: str
    expected: int
    out: Path
    state_dir: Path
    timeout: float
    tuned: bool

    @classmethod
    def parse(cls) -> "ContenderArgs":
        p = argparse.ArgumentParser(description="benchmark contender")
        p.add_argument("--broker", required=True, help="host:port")
        p.add_argument("--topic", required=True)
        p.add_argument("--group", required=True)
        p.add_argument("--expected", type=int, required=True,
                       help="events in the topic: only to stamp the last one's processing")
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--state-dir", type=Path, default=Path("/tmp/orderstats-bench-state"))
        p.add_argument("--timeout", type=float, default=3600.0,
                       help="give up (exit 2) after this many seconds")
        p.add_argument("--tuned", action="store_true",
                       help="the sensitivity variant: settings a careful user would choose")
        a = p.parse_args()
        return cls(a.broker, a.topic, a.group, a.expected, a.out, a.state_dir, a.timeout,
                   a.tuned)


def iso(start_s: int) -> str:
    return datetime.fromtimestamp(start_s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def items_of(lines: list[dict]) -> int:
    """Items of one order: the sum of its lines' quantities (what orderstats counts)."""
    return sum(line["qty"] for line in lines)


def write_result(args: ContenderArgs, events: int, first_at: float, done_at: float,
                 windows: Iterable[tuple[tuple[str, int], list[int]]]) -> None:
    """RESULT.json: {"events", "first_event_at", "done_at",
    "windows": {store: {iso: [orders, revenue, items]}}}; ``done_at``: the wall-clock time
    the ``expected``-th event was processed (0 if it never was)."""
    out: dict[str, dict[str, list[int]]] = {}
    for (store, start), counts in windows:
        out.setdefault(store, {})[iso(start)] = list(counts)
    args.out.write_bytes(orjson.dumps({"events": events, "first_event_at": first_at,
                                       "done_at": done_at, "windows": out}))


def on_release(callback: Callable[[], None]) -> None:
    """Call ``callback`` (from a daemon thread) once the runner closes our stdin: the
    timed window is over. A thread blocked in read() costs no CPU meanwhile."""
    def wait() -> None:
        sys.stdin.buffer.read()
        callback()

    threading.Thread(target=wait, name="release", daemon=True).start()


def die(message: str, code: int) -> None:
    """Print and exit at once: stream frameworks can hang in their own shutdown."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(code)


def start_watchdog(args: ContenderArgs, name: str) -> None:
    """Exit 2 if ``args.timeout`` passes before the runner released the contender."""
    timer = threading.Timer(args.timeout, die, (
        f"{name}: timed out after {args.timeout:.0f}s", 2))
    timer.daemon = True
    timer.start()
