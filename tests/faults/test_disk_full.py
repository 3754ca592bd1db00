"""The worker's data directory runs out of space under load (a size-limited tmpfs, filled
up): the worker stops with one clear error line, commits nothing past what it wrote, and
once space returns a restart is exact."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.faults.helpers import Load, assert_exact, report, timed_until
from tests.support import Deployment, WorkerProcess, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


class OutsideLogWorker(WorkerProcess):
    """A worker whose log is not on the (full) data disk, so it can tell what happened."""

    log_file: Path | None = None

    @property
    def log_path(self) -> Path:
        assert self.log_file is not None
        return self.log_file


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MB tmpfs, unmounted at the end (skips where mounting is not permitted)."""
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Write a ballast file until the disk is full."""
    ballast = disk / "ballast"
    chunk = b"\0" * (1 << 20)
    with open(ballast, "wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError:
            pass
    with open(ballast, "ab", buffering=0) as out:  # the last few KB too
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    return ballast


def start(dep: Deployment, disk: Path, log: Path) -> OutsideLogWorker:
    w = OutsideLogWorker(dep.env, disk / "data")
    w.log_file = log
    dep.workers.append(w)
    return w.start()


def test_data_dir_runs_out_of_space_under_load(deployment: Deployment, small_disk: Path,
                                              tmp_path):
    log = tmp_path / "worker.log"
    worker = start(deployment, small_disk, log)
    worker.wait_ready()
    load = Load(deployment, tmp_path / "truth.json", count=30_000, rate=2000, seed=3)
    try:
        wait_for(lambda: worker.counted() >= 3000, 60, what="some orders counted")
        before = len(log.read_text().splitlines())
        ballast = fill(small_disk)
        full = time.monotonic()
        stopped_s = timed_until(lambda: not worker.alive(), 60, "the worker to stop")
        report("disk full", "worker stopped after the disk filled in", stopped_s)
        assert worker.proc.returncode == 74, worker.log_tail()
        after = log.read_text().splitlines()[before:]
        errors = [line for line in after if "ERROR" in line or "CRITICAL" in line]
        assert len(errors) == 1, "\n".join(after[-30:])
        assert "No space left on device" in errors[0] and str(small_disk / "data") in errors[0]
        assert not any("Traceback" in line for line in after), "\n".join(after[-30:])
        print(f"\nthe one line: {errors[0]}")
        ballast.unlink()  # space returns
        worker = start(deployment, small_disk, log)
        worker.wait_ready()
        truth = load.finish()
    finally:
        load.stop()
    assert_exact(deployment, [worker], truth, timeout=180, crashes=True)
    report("disk full", "exact again after the restart (space back) in",
           time.monotonic() - full)
