"""Running each contender on the dataset and cutting out its timed window.

Every contender is a process of its own, started before the clock runs; the runner samples
its CPU and RSS and the broker's CPU (bench/sampler.py) and polls its group's committed
offsets (bench/committed.py). The peers (ceiling, Faust, Quix) are bench scripts released
through their stdin once committed; orderstats is the shipped worker (bench/orderstats_runner.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson

from bench.committed import CommitWatch
from bench.dataset import Dataset
from bench.measurement import Measurement, measure
from bench.orderstats_runner import run_orderstats
from bench.sampler import ProcSampler

# name -> (module, extra arguments): the bench scripts sharing bench/contender.py's CLI
PEERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ceiling": ("bench.ceiling_contender", ()),
    "naive-faust": ("bench.naive_faust_contender", ()),
    "faust-tuned": ("bench.naive_faust_contender", ("--tuned",)),
    "quix": ("bench.quix_contender", ()),
    "quix-tuned": ("bench.quix_contender", ("--tuned",)),
}
PLAIN = "orderstats-plain"  # orderstats without uvloop and its GC tuning (sensitivity)
TWO_WORKERS = "orderstats-2w"  # two orderstats workers in one group (scale-out)
CONTENDERS = ("ceiling", "naive-faust", "faust-tuned", "quix", "quix-tuned", "orderstats",
              PLAIN, TWO_WORKERS)
BASELINE = "baseline"  # orderstats of another install (``--baseline PATH``), e.g. before a change
UNKEYED = "orderstats-unkeyed"  # orderstats on the same orders produced without keys
HOSTILE = "orderstats-hostile"  # orderstats on the same orders with hostile events mixed in
RELEASE_TIMEOUT_S = 600  # reading the state back and writing the result, after the window


def run_peer(name: str, broker: str, broker_pid: int | None, data: Dataset, work: Path,
             timeout: float) -> Measurement:
    """A contender script: it consumes the topic and commits until the runner saw its
    offsets committed at the log end and closed its stdin; then it writes its result."""
    module, extra = PEERS[name]
    out = work / f"{name}-{uuid.uuid4().hex[:6]}.json"
    group = f"bench-{out.stem}"
    cmd = [sys.executable, "-m", module, "--broker", broker, "--topic", data.topic,
           "--group", group, "--expected", str(data.records), "--out", str(out),
           "--state-dir", str(work / f"state-{out.stem}"), "--timeout",
           str(timeout + RELEASE_TIMEOUT_S), *extra]
    log_path = work / f"{out.stem}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    sampler = ProcSampler({"contender": proc.pid, **({"broker": broker_pid} if broker_pid
                                                      else {})})
    watch = CommitWatch(broker, group, {data.topic: data.ends})
    problems: list[str] = []
    try:
        if not watch.wait(timeout, lambda: proc.poll() is None):
            problems.append(f"committed offsets never reached the log end (exit status "
                            f"{proc.poll()}), see {log_path}")
    finally:
        watch.stop()
        proc.stdin.close()  # released: read the state back, write the result, exit
        try:
            proc.wait(RELEASE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sampler.stop()
    if not out.exists():
        problems.append(f"no result (exit status {proc.returncode}), see {log_path}")
        return measure(name, data, 0, 0, watch.reached_at, sampler, {}, problems)
    result = orjson.loads(out.read_bytes())
    return measure(name, data, result["first_event_at"], result["done_at"], watch.reached_at,
                   sampler, result["windows"], problems)


def run_contender(name: str, broker: str, broker_pid: int | None, data: Dataset, work: Path,
                  timeout: float, baseline: str | None = None) -> Measurement:
    if name in PEERS:
        return run_peer(name, broker, broker_pid, data, work, timeout)
    runs = {
        "orderstats": lambda: run_orderstats(broker, broker_pid, data, work, timeout),
        PLAIN: lambda: run_orderstats(broker, broker_pid, data, work, timeout, PLAIN,
                                      untuned=True),
        TWO_WORKERS: lambda: run_orderstats(broker, broker_pid, data, work, timeout,
                                            TWO_WORKERS, workers=2),
        BASELINE: lambda: run_orderstats(broker, broker_pid, data, work, timeout, BASELINE,
                                         binary=baseline),
        UNKEYED: lambda: run_orderstats(broker, broker_pid, _need(data.unkeyed, "--unkeyed"),
                                        work, timeout, UNKEYED, repartitioned=True),
        HOSTILE: lambda: run_orderstats(broker, broker_pid,
                                        _need(data.with_hostile, "--hostile"), work, timeout,
                                        HOSTILE),
    }
    return runs[name]()


def _need(data: Dataset | None, option: str) -> Dataset:
    assert data is not None, f"{option} produces this contender's dataset"
    return data


def wait_quiet(seconds: float = 2.0) -> None:
    """A pause between contenders: the previous one's exit (and the broker's group and log
    housekeeping) should not land in the next one's window."""
    time.sleep(seconds)
