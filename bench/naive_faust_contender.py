"""Naive Faust: the textbook faust-streaming agent with windowed RocksDB tables.

Written the way the faust-streaming docs and examples (``examples/windowing``) do it:
a ``faust.Record`` with an ISO ``created_at`` datetime, three tumbling 60 s windowed tables
(orders, revenue, items) relative to that event-time field, one ``table[key] += ...`` per
event per table, ``concurrency=1``.  Every update sends one changelog record, i.e. three per
event: that is the point of this baseline.

``--tuned`` is the same agent reasonably configured (the sensitivity row): the root logger
at WARNING (mode leaves it at DEBUG, so every ``logger.debug`` on the hot path builds a
record before the handlers drop it) and Faust's in-memory Monitor sensor removed.

Run as a module (it shares bench/contender.py's command line)::

    python -m bench.naive_faust_contender --broker HOST:PORT --topic T --group G --expected N \
        --out RESULT.json [--state-dir DIR] [--timeout 3600] [--tuned]

Once released (bench/contender.py) the windows are read back from the tables' own RocksDB
stores (not from a side dict), RESULT.json is written, and the process exits hard
(``os._exit``): stopping a Faust worker cleanly from inside one of its tasks is not
something Faust offers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import faust
import orjson

from app.kafka.clients import Connection
from app.kafka.topics import ensure_topics
from bench.contender import ContenderArgs, die, items_of, iso, on_release, start_watchdog

WINDOW_S = 60
TABLES = ("orders", "revenue", "items")
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
    # Keys are the raw store ids (the direct path of orderstats), not JSON.
    source = app.topic(args.topic, value_type=Order, key_serializer="raw")

    orders = app.Table(TABLES[0], default=int).tumbling(
        WINDOW_S, expires=EXPIRES).relative_to_field(Order.created_at)
    revenue = app.Table(TABLES[1], default=int).tumbling(
        WINDOW_S, expires=EXPIRES).relative_to_field(Order.created_at)
    items = app.Table(TABLES[2], default=int).tumbling(
        WINDOW_S, expires=EXPIRES).relative_to_field(Order.created_at)

    progress = {"count": 0, "first": 0.0, "done": 0.0}

    def finish() -> None:
        # Read every window back from the tables' stores (RocksDB, all assigned partitions).
        windows: dict[str, dict[str, list[int]]] = {}
        for column, table in enumerate((orders, revenue, items)):
            for key, n in table.table.items():
                store, start = _split_key(key)
                windows.setdefault(store, {}).setdefault(iso(start), [0, 0, 0])[column] = n
        args.out.write_bytes(orjson.dumps({
            "events": progress["count"], "first_event_at": progress["first"],
            "done_at": progress["done"], "windows": windows}))
        die(f"naive-faust: {progress['count']} events, "
            f"{sum(len(w) for w in windows.values())} windows", 0)

    @app.task
    async def on_started() -> None:
        loop = asyncio.get_running_loop()
        on_release(lambda: loop.call_soon_threadsafe(finish))
        if args.tuned:
            if app.monitor in app.sensors:
                app.sensors.remove(app.monitor)
            logging.root.setLevel(logging.WARNING)

    @app.agent(source, concurrency=1)
    async def count_orders(stream):
        async for order in stream:
            if not progress["first"]:
                progress["first"] = time.time()
            orders[order.store_id] += 1
            revenue[order.store_id] += order.total
            items[order.store_id] += items_of(order.items)
            progress["count"] += 1
            if progress["count"] == args.expected:
                progress["done"] = time.time()

    return app


def create_changelogs(args: ContenderArgs) -> None:
    """Create the tables' changelog topics (compacted, 8 partitions) before the worker
    starts: Faust creates them concurrently with its first assignment, and a table whose
    changelog's partitions are not described yet crashes the agent (PartitionsMismatch),
    losing the events it held. Not per-event work, so it changes nothing measured."""
    conn = Connection(args.broker)
    asyncio.run(ensure_topics(conn, {f"{args.group}-{t}-changelog": {"cleanup.policy": "compact"}
                                     for t in TABLES}, 8))


def main() -> None:
    args = ContenderArgs.parse()
    start_watchdog(args, "naive-faust")
    create_changelogs(args)
    app = build(args)
    worker = faust.Worker(app, loglevel="warn", quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        # The worker only returns if it stopped on its own (crash, signal): not a success.
        die("naive-faust: worker stopped before it was released", 2)


if __name__ == "__main__":
    main()
