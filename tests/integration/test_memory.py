"""A regression check: a worker's memory during a replay does not grow with its length.

The scenario that once grew by about 1.2 KB per replayed event: state rebuilt from the
changelogs (a new host, or a lost disk), then the whole topic re-read with the state kept.
Two lengths, 4x apart, side by side; the bench reports the full-size figures.
"""

from __future__ import annotations

import shutil
import uuid

import pytest

from tests.support import Deployment, wait_for
from tests.worker_process import PeakRss

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def replay_peak_mb(kafka: str, tmp_path, events: int) -> float:
    # A small RocksDB budget (block cache and memtables): it fills up to its cap as a replay
    # reads more keys, by design; with 16 MB that bounded growth cannot hide a leak.
    dep = Deployment(kafka, tmp_path, name=f"mem{events}-{uuid.uuid4().hex[:6]}",
                     extra_env={"ORDERSTATS_ROCKSDB_CACHE_MB": "16"})
    try:
        dep.run("generate", "--count", str(events), "--stores", "500", "--span", "3600",
                "--rate", "0", timeout=600)
        worker = dep.worker(1)
        worker.wait_ready(180)
        wait_for(lambda: worker.counted() >= events, 600, what="the first pass")
        assert worker.stop() == 0
        shutil.rmtree(worker.data_dir)  # rebuilt from the changelogs, as on a new host
        dep.run("replay", "--to-earliest")
        worker = dep.worker(2)
        rss = PeakRss(worker.proc.pid)
        worker.wait_ready(300)
        wait_for(lambda: worker.processed() >= events, 600, what="the replay")
        peak = rss.stop()
        worker.stop()
        return peak
    finally:
        dep.cleanup()


def test_replay_memory_does_not_grow_with_the_number_of_events(kafka, tmp_path):
    small = replay_peak_mb(kafka, tmp_path, 50_000)
    large = replay_peak_mb(kafka, tmp_path, 200_000)
    print(f"peak RSS during the replay: {small:.0f} MB (50,000 events), "
          f"{large:.0f} MB (200,000 events)")
    # Once the larger replay took about 1.15 KB more per event (+170 MB here). Then +59 MB,
    # while the RocksDB budget did not reach a restarted worker's tables (each partition
    # kept a cache of its own, tests/unit/test_rocksdb_memory.py); with it: +23 and +24 MB.
    assert large - small < 45, (small, large)
