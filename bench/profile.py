"""Where the worker's time goes: py-spy samples of an orderstats worker consuming a dataset.

    .venv/bin/python -m bench.profile --broker 127.0.0.1:9092 [--events 300000]
        [--stores 1000] [--binary PATH] [--out bench/results/profile-<date>.txt]

Produces the benchmark's dataset to a fresh topic, starts a worker (``--binary``: another
install, e.g. a checkout before a change), samples it with ``py-spy record --format raw``
(idle stacks left out, every thread, non-blocking so the worker runs at full speed) from its
start until its group committed the log end, then sums the samples by area. A sample goes to
the area of its innermost frame that belongs to one (``AREAS``, first match wins, searched
from the leaf), so time in a library called by our code counts for the library's area
(a changelog send inside the agent is "changelog sends", a RocksDB call from tables/store.py
is "RocksDB"). Start-up (imports, recovery before the first batch) is an area of its own so
that it can be read apart; the percentages of the run are given without it.

py-spy is a bench extra (pyproject.toml); it must be allowed to ptrace the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.committed import CommitWatch
from app.kafka.clients import Connection
from app.kafka.offsets import log_bounds
from bench.dataset import produce_dataset
from tests.worker_process import ORDERSTATS, WorkerProcess

STARTUP = "start-up (imports, recovery)"
# (area, pattern over "function (file)") — searched from the innermost frame outwards.
AREAS: list[tuple[str, re.Pattern[str]]] = [(name, re.compile(pattern)) for name, pattern in [
    (STARTUP, r"importlib|_find_and_load|on_recovery|recover|on_partitions_assigned|"
              r"RocksDBOptions\.open|revoke_partitions|assign_partitions"),
    ("window closing (agents/closer.py, tables/closing.py, their sends)",
     r"\((\S*/)?(agents/closer|tables/closing)\.py"),
    ("producer sends (changelogs, forwards, dead letters)",
     r"\((aiokafka/producer|faust/transport/producer|app/faust_ext/producer|app/kafka/producer)"
     r"|Producer\.send |send_soon|send_changelog"),
]]
# the same, but the innermost matching frame decides (py-spy paths are relative to sys.path)
INNER: list[tuple[str, re.Pattern[str]]] = [(name, re.compile(pattern)) for name, pattern in [
    ("RocksDB reads/writes (tables/store.py, rocksdict)", r"\((\S*/)?(tables/store\.py|rocksdict)"),
    ("dedup (tables/dedup.py)", r"\((\S*/)?tables/dedup\.py"),
    ("aggregation (tables/fence.py, tables/windows.py)", r"\((\S*/)?tables/(fence|windows)\.py"),
    ("value/key encoding (tables/values.py, tables/keys.py)",
     r"\((\S*/)?tables/(values|keys)\.py"),
    ("decode+validation (app/order.py, app/event_mapping.py)",
     r"\((\S*/)?app/(order|event_mapping|currency|timefmt)\.py"),
    ("web/API and metrics", r"\((aiohttp|prometheus|\S*/?app/(web|metrics))"),
    ("event loop / asyncio / gc", r"execute_from_commandline \(mode/worker|\((asyncio|uvloop|selectors)"),
    ("Faust/aiokafka delivery (fetch -> events, conductor, stream, acks)",
     r"\((aiokafka|faust|mode|\S*/?app/faust_ext)/"),
    ("agent (agents/: batch bookkeeping, admission)", r"\((\S*/)?agents/"),
]]
OTHER = "other"
FRAME = re.compile(r"^(?P<fn>.*) \((?P<file>[^:()]*)(?::\d+)?\)$")


def classify(stack: list[str]) -> str:
    """The area of a sample: of its innermost frame that matches one (stack: root first)."""
    for name, pattern in AREAS:
        if any(pattern.search(f) for f in stack):
            return name
    for frame in reversed(stack):
        for name, pattern in INNER:
            if pattern.search(frame):
                return name
    return OTHER


def summarize(raw: str, title: str) -> str:
    """A small text: samples per area (of the run, start-up apart) and the top functions."""
    areas: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    debug_logs = 0  # logger.debug() calls that build a record (the root logger at DEBUG)
    total = 0
    for line in raw.splitlines():
        stack_s, _, count_s = line.rpartition(" ")
        if not stack_s or not count_s.isdigit():
            continue
        count = int(count_s)
        stack = [f for f in stack_s.split(";") if not f.startswith(("process ", "thread "))]
        if not stack:
            continue
        area = classify(stack)
        areas[area] += count
        total += count
        if area == STARTUP:
            continue
        thread = next((f for f in stack_s.split(";") if f.startswith("thread ")), "")
        threads["main" if "MainThread" in thread else "other (aiokafka's consumer thread, "
                "executors)"] += count
        if any(f.startswith("Logger.debug ") for f in stack):
            debug_logs += count
        leaf[_short(stack[-1])] += count
        for frame in {_short(f) for f in stack}:
            inclusive[frame] += count
    run = total - areas[STARTUP]
    out = [title, f"samples: {total} ({areas[STARTUP]} start-up, {run} while consuming)", "",
           "area (share of the samples while consuming)"]
    for name, n in areas.most_common():
        if name != STARTUP:
            out.append(f"  {100 * n / max(run, 1):5.1f}%  {name}")
    out += ["", "by thread"]
    out += [f"  {100 * n / max(run, 1):5.1f}%  {t}" for t, n in threads.most_common()]
    out += ["", f"  {100 * debug_logs / max(run, 1):5.1f}%  of all in logger.debug() calls that "
            "build a LogRecord (any area)"]
    out += ["", "top functions by own time (leaf frame)"]
    out += [f"  {100 * n / max(run, 1):5.1f}%  {f}" for f, n in leaf.most_common(25)]
    out += ["", "top functions by inclusive time"]
    out += [f"  {100 * n / max(run, 1):5.1f}%  {f}" for f, n in inclusive.most_common(30)]
    return "\n".join(out) + "\n"


def _short(frame: str) -> str:
    m = FRAME.match(frame)
    if not m:
        return frame
    path = m["file"]
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = re.sub(r"^.*/(app|tables|agents|bench)/", r"\1/", path)
    return f"{m['fn']} ({path})"


async def _log_ends(broker: str, topic: str) -> dict[int, int]:
    conn = Connection(broker)
    return {p: hi for p, (_lo, hi) in (await log_bounds(conn, topic)).items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--broker", default="127.0.0.1:9092")
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--stores", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--binary", default=ORDERSTATS)
    p.add_argument("--rate", type=int, default=100, help="samples per second")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--out", default="")
    p.add_argument("--raw", default="", help="keep py-spy's raw output here")
    p.add_argument("--summarize", default="", help="only summarize this raw file")
    p.add_argument("--topic", default="", help="a dataset topic produced before (by an earlier "
                   "run: same events for a before/after pair); default: produce a new one")
    a = p.parse_args()
    if a.summarize:
        print(summarize(Path(a.summarize).read_text(), f"profile of {a.summarize}"))
        return
    broker = a.broker.removeprefix("kafka://")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    if a.topic:
        ends = asyncio.run(_log_ends(broker, a.topic))
        a.events = sum(ends.values())
    else:
        ends = produce_dataset(broker, f"bench-profile-{stamp}", a.events, a.stores,
                               a.seed).ends
        a.topic = f"bench-profile-{stamp}"
    work = Path(tempfile.mkdtemp(prefix="orderstats-profile-"))
    name = f"bench-prof-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "ORDERSTATS_BROKER": f"kafka://{broker}", "ORDERSTATS_APP_ID": name,
           "ORDERSTATS_ORDERS_TOPIC": a.topic, "ORDERSTATS_DLQ_TOPIC": f"{name}-dlq"}
    raw_path = Path(a.raw or work / "raw.txt")
    worker = WorkerProcess(env, work / name, binary=a.binary).start(loglevel="warn")
    assert worker.proc is not None
    spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record",
                            "--pid", str(worker.proc.pid), "--format", "raw", "--threads",
                            "--nonblocking", "--rate", str(a.rate), "-o", str(raw_path)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watch = CommitWatch(broker, name, {a.topic: ends})
    started = time.monotonic()
    try:
        ok = watch.wait(a.timeout, worker.alive)
        elapsed = time.monotonic() - started
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(60)
        except subprocess.TimeoutExpired:
            spy.kill()
        watch.stop()
        worker.stop()
    if not ok:
        sys.exit(f"the worker never committed the log end; see {worker.log_path}")
    title = (f"orderstats worker profile ({a.binary}), py-spy {a.rate} Hz non-blocking, idle "
             f"off, all threads; {a.events:,} events ({a.topic}), {a.stores:,} stores, 8 partitions; "
             f"{elapsed:.1f} s from start to committed log end ({stamp}; the machine is "
             f"shared, figures are noisy)")
    text = summarize(raw_path.read_text(), title)
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
