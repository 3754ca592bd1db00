"""The ``orderstats`` command: Faust's CLI (``orderstats worker ...``) plus our commands.

The app is built here rather than at import: a worker must first learn the current state
epoch from Kafka (see app.epoch) to know which consumer group and changelogs are current.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Awaitable, Callable

import orjson
import uvloop
from faust.cli import option

from app.epoch import read_epoch
from app.generator import GeneratorConfig, OrderGenerator
from app.main import Orderstats, build_app, run_sync
from app.producing import ensure_topic, print_progress, produce
from app.settings import Settings, SettingsError


def register_commands(orderstats: Orderstats) -> None:
    """Add the project's own commands to the Faust CLI of ``orderstats.app``."""
    app = orderstats.app
    app.command(*GENERATE_OPTIONS)(generate_command(orderstats))
    from app.replay import register_replay

    register_replay(orderstats)


GENERATE_OPTIONS = (
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
)


def generate_command(orderstats: Orderstats) -> Callable[..., Awaitable[None]]:
    async def generate(self: object, stores: int, rate: float, count: int, duration: float,
                       span: float, zipf: float, seed: int, duplicates: float, invalid: float,
                       late: float, truth: str, topic: str) -> None:
        """Produce realistic orders (Zipf-skewed stores) and record their ground truth."""
        settings = orderstats.settings
        gen = OrderGenerator(GeneratorConfig(
            stores=stores, zipf_s=zipf, seed=seed, duplicate_share=duplicates,
            invalid_share=invalid, late_share=late, window_size_s=settings.window_size_s,
            retention_s=settings.retention_s))
        stop = {"flag": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
        deadline = time.monotonic() + duration if duration else None

        def should_stop() -> bool:
            return stop["flag"] or (deadline is not None and time.monotonic() >= deadline)

        def live_events():
            while count == 0 or gen.truth.produced < count:
                now = int(time.time() * 1000)
                yield gen.event(now, now)

        now_ms = int(time.time() * 1000)
        events = (gen.events(count, now_ms - int(span * 1000), int(span * 1000), now_ms)
                  if span and count else live_events())
        target = topic or settings.orders_topic
        partitions = await ensure_topic(settings.broker, target, settings.partitions)
        if partitions != settings.partitions:
            print(f"warning: topic {target} has {partitions} partitions, the app expects "
                  f"{settings.partitions} (ORDERSTATS_PARTITIONS)", file=sys.stderr)
        print(f"producing to {target} at {'max' if not rate else f'{rate:g}/s'} over {stores} "
              "stores (Ctrl-C stops)", file=sys.stderr, flush=True)
        try:
            sent = await produce(settings.broker, target, events, rate, print_progress, should_stop)
        finally:
            if truth:
                Path(truth).write_bytes(orjson.dumps(gen.truth.to_json(),
                                                     option=orjson.OPT_INDENT_2))
        print(f"done: {sent:,} events ({gen.truth.invalid:,} invalid, "
              f"{gen.truth.duplicates:,} duplicates)", file=sys.stderr, flush=True)

    return generate


def main() -> None:
    # uvloop roughly halves the event loop's share of the hot path; Faust's ``-L aio``
    # (the default) keeps whatever loop policy is installed.
    if os.environ.get("ORDERSTATS_EVENT_LOOP", "uvloop") == "uvloop":
        uvloop.install()
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"error: {exc}")
    epoch = 1
    if "worker" in sys.argv[1:2]:
        epoch = run_sync(read_epoch(settings.broker, settings.app_id))
    orderstats = build_app(settings, epoch)
    register_commands(orderstats)
    orderstats.app.main()


if __name__ == "__main__":
    main()
