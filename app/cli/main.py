"""The ``orderstats`` command: Faust's CLI (``orderstats worker ...``) plus our commands.

The app is built here rather than at import: a worker must first learn the current state
epoch from Kafka (app/kafka/epoch.py) to know which consumer group and changelogs are
current. ``--help`` of any command answers without a broker.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import uvloop

from app.cli import dlq, gateway, generate, replay, verify
from app.faust_ext import check_versions
from app.kafka.clients import Connection, unreachable
from app.kafka.control import read_control
from app.kafka.topics import partition_ids
from app.settings import Settings, SettingsError
from app.worker import build_app, run_sync


def wants_help(argv: list[str]) -> bool:
    return any(arg in ("-h", "--help") for arg in argv)


def runs_worker(argv: list[str]) -> bool:
    return argv[:1] == ["worker"] and not wants_help(argv)


SHADOW_FLAG = "--shadow"


def current_epoch(settings: Settings, argv: list[str]) -> int:
    """The state epoch a worker runs in; other commands and --help do not need it.

    ``orderstats worker --shadow`` runs the epoch a shadow rebuild is building (``orderstats
    replay --rebuild --shadow``) instead of the current one."""
    if not runs_worker(argv):
        return 1
    conn = Connection.of(settings)
    try:
        state = run_sync(read_control(conn, settings.app_id))
    except Exception as exc:  # one line, never a traceback
        sys.exit(unreachable(conn, exc))
    if SHADOW_FLAG not in argv:
        return state.epoch
    if state.pending is None:
        sys.exit(f"error: no shadow rebuild is pending (epoch {state.epoch} is current); "
                 "start one with `orderstats replay --rebuild --shadow --to-earliest`, or "
                 "start this worker without --shadow")
    return state.pending


def with_source_partitions(settings: Settings, argv: list[str]) -> Settings:
    """The orders topic's partition count is authoritative once it exists (a producer may
    have let the broker create it); ORDERSTATS_PARTITIONS only applies when we create it."""
    if not runs_worker(argv):
        return settings
    conn = Connection.of(settings)
    try:
        have = run_sync(partition_ids(conn, settings.orders_topic))
    except Exception as exc:  # one line, never a traceback
        sys.exit(unreachable(conn, exc))
    return replace(settings, partitions=len(have)) if have else settings


def main() -> None:
    check_versions()
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"error: {exc}")
    # uvloop roughly halves the event loop's share of the hot path; Faust's ``-L aio``
    # (the default) keeps whatever loop policy is installed.
    if settings.event_loop == "uvloop":
        uvloop.install()
    argv = sys.argv[1:]
    if argv[:1] == ["worker"] and SHADOW_FLAG in argv:  # ours, not Faust's: taken out
        sys.argv = [sys.argv[0]] + [a for a in argv if a != SHADOW_FLAG]
    settings = with_source_partitions(settings, argv)
    orderstats = build_app(settings, current_epoch(settings, argv), worker=runs_worker(argv),
                           shadow=SHADOW_FLAG in argv)
    app = orderstats.app
    generate.register(app, settings)
    replay.register(app, settings)
    verify.register(app)
    gateway.register(app, settings)
    dlq.register(app, settings)
    app.main()


if __name__ == "__main__":
    main()
