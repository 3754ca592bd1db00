"""What every contender shares: its command line and the result file it writes."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

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

    @classmethod
    def parse(cls) -> "ContenderArgs":
        p = argparse.ArgumentParser(description="benchmark contender")
        p.add_argument("--broker", required=True, help="host:port")
        p.add_argument("--topic", required=True)
        p.add_argument("--group", required=True)
        p.add_argument("--expected", type=int, required=True, help="events to consume")
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--state-dir", type=Path, default=Path("/tmp/orderstats-bench-state"))
        p.add_argument("--timeout", type=float, default=900.0,
                       help="give up (exit 2) after this many seconds")
        a = p.parse_args()
        return cls(a.broker, a.topic, a.group, a.expected, a.out, a.state_dir, a.timeout)


def iso(start_s: int) -> str:
    return datetime.fromtimestamp(start_s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_result(args: ContenderArgs, events: int, first_at: float, done_at: float,
                 windows: Iterable[tuple[tuple[str, int], list[int]]]) -> None:
    """RESULT.json: {"events", "first_event_at", "done_at", "windows": {store: {iso: [o, r]}}}"""
    out: dict[str, dict[str, list[int]]] = {}
    for (store, start), (orders, revenue) in windows:
        out.setdefault(store, {})[iso(start)] = [orders, revenue]
    args.out.write_bytes(orjson.dumps({"events": events, "first_event_at": first_at,
                                       "done_at": done_at, "windows": out}))


def die(message: str, code: int) -> None:
    """Print and exit at once: stream frameworks can hang in their own shutdown."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(code)


def start_watchdog(args: ContenderArgs, name: str) -> None:
    """Exit 2 if ``args.timeout`` passes before the contender is done."""
    timer = threading.Timer(args.timeout, die, (
        f"{name}: timed out after {args.timeout:.0f}s before {args.expected} events", 2))
    timer.daemon = True
    timer.start()
