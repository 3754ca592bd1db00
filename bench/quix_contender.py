"""Quix Streams: a StreamingDataFrame with an event-time tumbling window, as documented.

``Application`` with its RocksDB state and changelog topics (the defaults), raw (string) key and
value deserializers, a timestamp extractor reading ``created_at``, and
``tumbling_window(60 s).agg(orders=Count(), revenue=Sum("total")).current()``.
Quix's own per-message processing is what is measured; nothing is tuned beyond defaults,
except with ``--tuned`` (the sensitivity row): the GC settings orderstats' worker uses, a 1 s
commit interval (Quix's default is 5 s) and orderstats' fetch size per partition (2 MiB).

Run as a module (it shares bench/contender.py's command line)::

    python -m bench.quix_contender --broker HOST:PORT --topic T --group G --expected N \
        --out RESULT.json [--state-dir DIR] [--timeout 3600] [--tuned]

Result windows: reading Quix's windowed RocksDB state back directly is not supported by
its public API (the store layout is internal), so the windows reported are the latest
values Quix *emitted* for each (store, window) via ``.current()``, which emits the
window's aggregate from its state on every update.  The dict below only remembers the
last emitted row per window; it does no aggregation of its own.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import orjson
from quixstreams import Application
from quixstreams.dataframe.windows import Count, Sum

from bench.contender import ContenderArgs, die, items_of, iso, on_release, start_watchdog

WINDOW = timedelta(seconds=60)
# Quix drops events for windows that are already closed: with the default "key" closing
# strategy, an event is late once its window end + grace is behind the newest created_at
# seen for that store.  Event times in the benchmark data are slightly out of order
# (a few seconds of jitter), so the default grace of 0 would drop valid events; one
# window's worth of grace covers that with room to spare.  Late drops are counted and
# reported on stderr.
GRACE = timedelta(seconds=60)
# --tuned: orderstats' consumer fetch size per partition (app/worker.py) and commit interval.
TUNED_FETCH_BYTES = 2 * 1024 * 1024
TUNED_COMMIT_INTERVAL_S = 1.0


def tune_gc() -> None:
    """The GC settings of orderstats' worker (app/faust_ext tune_runtime), once started."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def created_at_ms(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
    """Event time: the order's created_at (ISO-8601 with offset) in epoch milliseconds."""
    return round(datetime.fromisoformat(value["created_at"]).timestamp() * 1000)


def main() -> None:
    args = ContenderArgs.parse()
    start_watchdog(args, "quix")

    args.state_dir.mkdir(parents=True, exist_ok=True)
    tuned = dict(commit_interval=TUNED_COMMIT_INTERVAL_S,
                 consumer_extra_config={"max.partition.fetch.bytes": TUNED_FETCH_BYTES})
    app = Application(
        broker_address=args.broker,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=str(args.state_dir),
        loglevel="WARNING",
        **(tuned if args.tuned else {}),
    )
    topic = app.topic(args.topic, key_deserializer="str", value_deserializer="json",
                      timestamp_extractor=created_at_ms)

    progress = {"count": 0, "first": 0.0, "done": 0.0, "late": 0}
    latest: dict[tuple[str, int], tuple[int, int]] = {}

    def count_event(value: Any) -> None:
        if not progress["first"]:
            progress["first"] = time.time()
        progress["count"] += 1
        value["qty"] = items_of(value["items"])  # a column for the items Sum below

    def on_late(value: Any, key: Any, timestamp_ms: int, late_by_ms: int, start: int,
                end: int, store_name: str, topic: str, partition: int, offset: int) -> bool:
        progress["late"] += 1
        return False  # no per-event log line

    def record_window(value: dict, key: Any, timestamp: int, headers: Any) -> None:
        latest[(key, value["start"])] = (value["orders"], value["revenue"], value["items"])
        if progress["count"] >= args.expected and not progress["done"]:
            progress["done"] = time.time()

    sdf = app.dataframe(topic)
    sdf = sdf.update(count_event)
    sdf = (sdf.tumbling_window(WINDOW, grace_ms=GRACE, on_late=on_late)
           .agg(orders=Count(), revenue=Sum("total"), items=Sum("qty"))
           .current())
    sdf = sdf.update(record_window, metadata=True)

    on_release(app.stop)  # the runner saw our committed offsets reach the log end
    if args.tuned:
        tune_gc()
    app.run()
    if progress["count"] < args.expected:
        die(f"quix: released after {progress['count']} of {args.expected} events", 2)
    # If the Nth event itself was dropped as late, no window row followed it.
    done_at = progress["done"] or time.time()

    windows: dict[str, dict[str, list[int]]] = {}
    for (store, start_ms), counts in latest.items():
        windows.setdefault(store, {})[iso(start_ms // 1000)] = list(counts)
    args.out.write_bytes(orjson.dumps({
        "events": progress["count"], "first_event_at": progress["first"],
        "done_at": done_at, "windows": windows}))
    seconds = max(done_at - progress["first"], 1e-9)
    late = f", {progress['late']} dropped as late" if progress["late"] else ""
    sys.stderr.write(f"quix: {progress['count']} events in {seconds:.2f}s "
                     f"({progress['count'] / seconds:,.0f}/s), {len(latest)} windows{late}\n")
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
