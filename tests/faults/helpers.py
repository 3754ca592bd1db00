"""What every fault test does around its fault: load in the background, then the proof.

The proof is the issue's: every store's windows and totals equal the ground truth of what
the broker acknowledged (the generator writes it), and the dead-letter topic holds exactly
the injected invalid events, each once.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import orjson

from tests.support import ORDERSTATS, Deployment, WorkerProcess, assert_matches_truth
from tests.worker_process import read_records

HOSTS = ("127.0.0.1", "127.0.0.2")


class Load:
    """``orderstats generate`` running in the background (invalid events and duplicates
    included), recording the ground truth of what the broker acknowledged."""

    def __init__(self, dep: Deployment, truth: Path, count: int, rate: int, seed: int,
                 env: dict[str, str] | None = None) -> None:
        self.truth = truth
        self.log = truth.with_suffix(".log")  # a file, not a pipe: during an outage the
        # producer logs a line per failed connection, and a full pipe would block it
        self.started = time.monotonic()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [ORDERSTATS, "generate", "--truth", str(truth), "--stores", "60", "--seed",
                 str(seed), "--duplicates", "0.02", "--invalid", "0.01", "--count",
                 str(count), "--rate", str(rate)], env={**dep.env, **(env or {})},
                stdout=subprocess.DEVNULL, stderr=log)

    def running(self) -> bool:
        return self.proc.poll() is None

    def finish(self, timeout: float = 240) -> dict[str, Any]:
        """Wait for the generator to end; its truth (acknowledged events only)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"the generator did not end within {timeout} s") from None
        assert code == 0, self.log.read_text(errors="replace")[-3000:]
        return orjson.loads(self.truth.read_bytes())

    def stop(self) -> None:
        if self.running():
            self.proc.kill()
            self.proc.wait(10)



def assert_dead_letters_exact(dep: Deployment, truth: dict[str, Any], crashes: bool) -> int:
    """The DLQ holds every injected invalid event (by its source offset) exactly once,
    nothing else, also with ``crashes``: a worker that dies after a batch's dead letters
    were acknowledged but before its progress was written replays the batch, and the new
    owner finds those letters in the dead-letter partition and does not send them again
    (agents/orders.py check_letters). Returns the copies (always 0 when it returns)."""
    records = read_records(dep.broker, f"orders-dlq-{dep.name}")
    sources = [(dict(r.headers)["orderstats.source.topic"],
                dict(r.headers)["orderstats.source.partition"],
                dict(r.headers)["orderstats.source.offset"]) for r in records]
    assert len(set(sources)) == truth["invalid"], (len(set(sources)), truth["invalid"])
    copies = len(records) - len(set(sources))
    assert copies == 0, f"{copies} invalid events dead-lettered twice (crashes: {crashes})"
    if copies:
        print(f"\ndead letters sent again after a crash: {copies}")
    return copies


def assert_exact(dep: Deployment, workers: list[WorkerProcess], truth: dict[str, Any],
                 timeout: float = 120, crashes: bool = False) -> float:
    """Every worker answers the truth exactly and the DLQ is exact; seconds it took."""
    started = time.monotonic()
    for w in workers:
        assert_matches_truth(w.url, truth, timeout=timeout)
    elapsed = time.monotonic() - started
    assert_dead_letters_exact(dep, truth, crashes)
    return elapsed


def timed_until(predicate: Callable[[], bool], timeout: float, what: str,
                interval: float = 0.2) -> float:
    """Seconds until ``predicate()`` holds; fails the test after ``timeout``."""
    started = time.monotonic()
    last: Any = None
    while time.monotonic() - started < timeout:
        try:
            if predicate():
                return time.monotonic() - started
        except OSError as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def report(fault: str, what: str, seconds: float) -> None:
    """One line per figure for the issue note (pytest -s shows it)."""
    print(f"\nfault: {fault}: {what} {seconds:.1f} s", flush=True)
