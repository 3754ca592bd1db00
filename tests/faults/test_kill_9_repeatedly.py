"""Two workers under load, one of them killed (kill -9) at a random moment ten times in a
row and started again each time: the counts end exact, every dead letter once."""

from __future__ import annotations

import random
import time

import pytest

from tests.faults.helpers import HOSTS, Load, assert_exact, report
from tests.support import Deployment, WorkerProcess, http_json

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

KILLS = 10
SEED = 20261123  # the moments and the victims; the same every run


def counted_so_far(worker: WorkerProcess) -> int | None:
    """The victim's counted orders at the kill (None: it was still starting)."""
    try:
        return worker.counted()
    except OSError:
        return None


def settled(workers: list[WorkerProcess], cap_s: float) -> None:
    """Until every worker is ready (partitions assigned, tables recovered), at most ``cap_s``."""
    deadline = time.monotonic() + cap_s
    while time.monotonic() < deadline:
        try:
            if all(http_json(w.url + "/ready", timeout=2)[0] == 200 for w in workers):
                return
        except OSError:
            pass
        time.sleep(0.2)


def test_kill_9_ten_times_in_a_row_under_load(deployment: Deployment, tmp_path):
    rng = random.Random(SEED)
    fast = {"session_timeout_s": "6"}  # a killed member leaves the group sooner
    workers = [deployment.worker(i + 1, HOSTS[i], **fast) for i in range(2)]
    for w in workers:
        w.wait_ready()
    load = Load(deployment, tmp_path / "truth.json", count=70_000, rate=1000, seed=7)
    kills: list[str] = []
    mid_stream = 0  # kills of a worker that was counting (not still starting or recovering)
    try:
        time.sleep(1.5)
        for _ in range(KILLS):
            # Mostly mid-stream: once both count again (or after 5 s, mid-rebalance), a
            # random moment later.
            settled(workers, 5)
            time.sleep(rng.uniform(0.2, 1.5))
            # The victim: a worker that is counting if there is one (on a loaded machine a
            # restarted worker can still be starting), else either.
            so_far = [counted_so_far(w) for w in workers]
            counting = [i for i, n in enumerate(so_far) if n]
            victim = rng.choice(counting) if counting else rng.randrange(2)
            counted = so_far[victim]
            workers[victim].kill()
            kills.append(f"w{victim + 1}@{time.monotonic() - load.started:.1f}s/{counted}")
            mid_stream += bool(counted)
            workers[victim] = deployment.worker(victim + 1, HOSTS[victim], **fast)
        restarted = time.monotonic()
        print(f"\nkills (worker@time since load start/orders it counted since its start): "
              f"{kills}")
        assert load.running(), "the load ended before the last kill: not under load"
        # Restarts rebalance the group, so most kills land in a restart; 2 of 10 (seen in CI)
        # still prove crash recovery mid-stream, with exact counts and letters at the end.
        assert mid_stream >= 2, f"only {mid_stream} kills hit a worker while it counted"
        truth = load.finish()
    finally:
        load.stop()
    for w in workers:
        w.wait_ready()
    exact_after = assert_exact(deployment, workers, truth, timeout=180, crashes=True)
    report("kill -9 x10", "exact again after the last restart in",
           time.monotonic() - restarted)
    report("kill -9 x10", "(of which after the load ended)", exact_after)
