"""``orderstats generate``: realistic orders to Kafka, with their ground truth."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import click
import faust
import orjson
from faust.cli import option

from app.cli.errors import exit_on_kafka_error
from app.cli.progress import progress_to
from app.cli.order_generator import (KEY_STYLES, Effect, GeneratorConfig, Headers,
                                     OrderGenerator)
from app.kafka.clients import Connection
from app.kafka.producer import produce
from app.kafka.topics import ensure_topic
from app.settings import Settings

OPTIONS = (
    option("--stores", type=int, default=50, show_default=True, help="Number of stores."),
    option("--rate", type=float, default=200.0, show_default=True,
           help="Orders per second (0 = as fast as possible)."),
    option("--count", type=int, default=0, help="Stop after this many events (0 = no limit)."),
    option("--duration", type=float, default=0.0,
           help="Stop after this many seconds (0 = no limit)."),
    option("--span", type=float, default=0.0,
           help="With --count: spread created_at evenly over the last SPAN seconds "
                "instead of using the wall clock at send time."),
    option("--zipf", type=float, default=1.1, show_default=True,
           help="Zipf exponent of store popularity (0 = uniform)."),
    option("--seed", type=int, default=42, show_default=True),
    option("--duplicates", type=float, default=0.0, help="Share of re-sent duplicate orders."),
    option("--invalid", type=float, default=0.0, help="Share of invalid events."),
    option("--late", type=float, default=0.0,
           help="Share of orders older than the retention (counted in totals, not windows)."),
    option("--truth", type=str, default="", help="Write the ground truth JSON here."),
    option("--topic", type=str, default="", help="Topic (default: the orders topic)."),
    option("--keys", type=click.Choice(KEY_STYLES), default=None,
           help="Record keys: the store id raw or JSON-encoded, none (the partitioner "
                "spreads them), or mixed. Default: ORDERSTATS_KEY_FORMAT."),
)


def print_progress(sent: int, elapsed: float) -> None:
    print(f"  produced {sent:,} orders in {elapsed:.1f}s ({sent / elapsed:,.0f}/s)",
          file=sys.stderr, flush=True)


def bar_progress(update: Callable[[int], None]) -> Callable[[int, float], None]:
    """The producer's progress callback, moving a progress bar."""
    return lambda sent, _elapsed: update(sent)


def register(app: faust.App, settings: Settings) -> None:
    conn = Connection.of(settings)

    @app.command(*OPTIONS)
    @exit_on_kafka_error(lambda: conn)
    async def generate(self: object, stores: int, rate: float, count: int, duration: float,
                       span: float, zipf: float, seed: int, duplicates: float, invalid: float,
                       late: float, truth: str, topic: str, keys: str | None) -> None:
        """Produce realistic orders (Zipf-skewed stores) and record their ground truth."""
        gen = OrderGenerator(GeneratorConfig(
            stores=stores, zipf_s=zipf, seed=seed, duplicate_share=duplicates,
            invalid_share=invalid, late_share=late, window_size_s=settings.window_size_s,
            retention_s=settings.retention_s, keys=keys or settings.key_format,
            record_invalid=bool(truth)))
        should_stop = stop_condition(duration)
        target = topic or settings.orders_topic
        partitions = await ensure_topic(conn, target, settings.partitions)
        if partitions != settings.partitions:
            print(f"warning: topic {target} has {partitions} partitions, the app expects "
                  f"{settings.partitions} (ORDERSTATS_PARTITIONS)", file=sys.stderr)
        print(f"producing to {target} at {'max' if not rate else f'{rate:g}/s'} over {stores} "
              "stores (Ctrl-C stops)", file=sys.stderr, flush=True)
        try:
            # The truth counts an event only once the broker acknowledged it (on_ack), so
            # it matches the topic also after --duration, SIGTERM or Ctrl-C.
            with progress_to(count or None, "producing") as update:
                sent = await produce(conn, target, events(gen, count, span), rate,
                                     bar_progress(update), should_stop,
                                     on_ack=gen.truth.apply)
        finally:
            if truth:
                Path(truth).write_bytes(orjson.dumps(gen.truth.to_json(),
                                                     option=orjson.OPT_INDENT_2))
        print(f"done: {sent:,} events ({gen.truth.invalid:,} invalid, "
              f"{gen.truth.duplicates:,} duplicates)", file=sys.stderr, flush=True)


def stop_condition(duration: float) -> Callable[[], bool]:
    """True once SIGTERM or SIGINT (Ctrl-C) arrived or ``duration`` seconds passed (0: no
    limit). Either signal stops the sending gracefully: what is in flight is acknowledged
    and counted before the truth is written. A second Ctrl-C interrupts at once."""
    stop = {"flag": False}

    def on_signal(signum: int) -> None:
        if signum == signal.SIGINT and stop["flag"]:
            os._exit(130)
        stop["flag"] = True

    # In place of the command runner's handlers (which cancel the command mid-flight):
    # the event loop's, since a plain signal.signal() would not keep the loop's from firing.
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(signum)
        loop.add_signal_handler(signum, on_signal, signum)
    deadline = time.monotonic() + duration if duration else None
    return lambda: stop["flag"] or (deadline is not None and time.monotonic() >= deadline)


Event = tuple[bytes | None, bytes, Effect, Headers | None]


def events(gen: OrderGenerator, count: int, span: float) -> Iterator[Event]:
    """Events spread over the last ``span`` seconds, or live at the wall clock; each with
    its truth Effect, to be applied once the broker acknowledged it, and its headers."""
    now_ms = int(time.time() * 1000)
    if span and count:
        for key, value, effect in gen.pending_events(count, now_ms - int(span * 1000),
                                                     int(span * 1000), now_ms):
            yield key, value, effect, effect.headers
        return
    made = 0
    while count == 0 or made < count:
        now = int(time.time() * 1000)
        made += 1
        key, value, effect = gen.next_event(now, now)
        yield key, value, effect, effect.headers
