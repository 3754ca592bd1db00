"""Naive Faust: the textbook faust-streaming agent with windowed RocksDB tables.

Written the way the faust-streaming docs and examples (``examples/windowing``) do it:
a ``faust.Record`` with an ISO ``created_at`` datetime, two tumbling 60 s windowed tables
relative to that event-time field, one ``table[key] += ...`` per event per table,
``concurrency=1``.  Every update sends one changelog record, i.e. two per event: that is
the point of this baseline.

Run as a module (it shares bench/contender.py's command line)::

    python -m bench.naive_faust_contender --broker HOST:PORT --topic T --group G --expected N \
        --out RESULT.json [--state-dir DIR] [--timeout 900]

At the end the windows are read back from the tables' own RocksDB stores (not from a side
dict), RESULT.json is written, and the process exits hard (``os._exit``): stopping a Faust
worker cleanly from inside one of its agents is not something Faust offers.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import faust
import orjson

from bench.contender import ContenderArgs, die, iso, start_watchdog

WINDOW_S = 60
# Windows are expired by *wall clock* (Faust compares the window end with time.time()),
# and the events' created_at may be hours old: keep them all for the benchmark.
EXPIRES = timedelta(days=3650)


class Order(faust.Record, isodates=True, serializer="json"):
    order_id: str
    store_id: str
    created_at: datetime
    items: list
    total: int
    currency: str
    channel: str = ""


def _split_key(key: Any) -> tuple[str, float]:
    """A windowed table key is (key, (start, end)); after a JSON round trip, lists."""
    store, window = key
    return store, float(window[0])


def build(args: ContenderArgs) -> faust.App:
    args.state_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        args.group,
        broker=f"kafka://{args.broker}",
        store="rocksdb://",
        datadir=str(args.state_dir),
        topic_partitions=8,
        key_serializer="json",
        value_serializer="json",
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
    )
    source = app.topic(args.topic, value_type=Order)

    orders = app.Table("orders", default=int).tumbling(
        WINDOW_S, expires=EXPIRES).relative_to_field(Order.created_at)
    revenue = app.Table("revenue", default=int).tumbling(
        WINDOW_S, expires=EXPIRES).relative_to_field(Order.created_at)

    progress = {"count": 0, "first": 0.0}

    def finish(done_at: float) -> None:
        # Read every window back from the tables' stores (RocksDB, all assigned partitions).
        windows: dict[str, dict[str, list[int]]] = {}
        for key, n in orders.table.items():
            store, start = _split_key(key)
            windows.setdefault(store, {}).setdefault(iso(start), [0, 0])[0] = n
        for key, r in revenue.table.items():
            store, start = _split_key(key)
            windows.setdefault(store, {}).setdefault(iso(start), [0, 0])[1] = r
        args.out.write_bytes(orjson.dumps({
            "events": progress["count"], "first_event_at": progress["first"],
            "done_at": done_at, "windows": windows}))
        seconds = max(done_at - progress["first"], 1e-9)
        die(f"naive-faust: {progress['count']} events in {seconds:.2f}s "
            f"({progress['count'] / seconds:,.0f}/s), "
            f"{sum(len(w) for w in windows.values())} windows", 0)

    @app.agent(source, concurrency=1)
    async def count_orders(stream):
        async for order in stream:
            if not progress["first"]:
                progress["first"] = time.time()
            orders[order.store_id] += 1
            revenue[order.store_id] += order.total
            progress["count"] += 1
            if progress["count"] >= args.expected:
                finish(time.time())

    return app


def main() -> None:
    args = ContenderArgs.parse()
    start_watchdog(args, "naive-faust")
    app = build(args)
    worker = faust.Worker(app, loglevel="warn", quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        # The worker only returns if it stopped on its own (crash, signal): not a success.
        die("naive-faust: worker stopped before all events were processed", 2)


if __name__ == "__main__":
    main()
