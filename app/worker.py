"""The composition root: builds the Faust app from Settings and wires tables, agents, web.

Nothing is built at import: ``build_app`` takes the settings and the state epoch, so the
``orderstats`` command (app/cli/main.py) builds the app only once it knows the epoch, and
tests can build apps with settings of their own.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Coroutine, TypeVar

import faust
from aiokafka.errors import KafkaError

from agents.batch import Topics
from agents.closer import WindowCloser, results_topic
from agents.orders import OrderBatchProcessor, define_orders_agent
from app.epoch_watch import watch_epochs
from app.faust_ext import SCHEME, STORE_URL, BatchStream, RawBytesSchema, tune_runtime
from app.faust_ext.native_memory import fix_mmap_threshold, limit_arenas, trim_periodically
from app.kafka.clients import Connection, unreachable
from app.kafka.dlq import SentLetters
from app.kafka.epoch import group_id
from app.kafka.liveness import KafkaLiveness
from app.kafka.log_probe import LogProbe
from app.kafka.topics import ensure_topics
from app.memtrace import trace_memory
from app.security import faust_settings
from app.settings import Settings
from app.web.cluster import Cluster
from app.web.reader import StatsReader
from app.web.routes import register_views
from tables.schema import StatsTables, TableOptions, define_tables, repartition_topic
from tables.values import ORDERS, REPARTITION

T = TypeVar("T")
# A dead letter is the original event plus headers: twice the broker's default record limit
# (1 MiB) leaves room for any event a default topic accepted.
DLQ_MAX_MESSAGE_BYTES = 2 * 1024 * 1024


@dataclass
class Orderstats:
    """Handles on the assembled parts, for commands and tests."""

    app: faust.App
    settings: Settings
    sources: faust.TopicT
    tables: StatsTables
    processor: OrderBatchProcessor


def faust_config(settings: Settings, epoch: int = 1) -> dict:
    """Faust settings derived from ours (see README, "Configuration")."""
    return dict(
        version=epoch,  # see app.kafka.epoch: a rebuild moves to fresh changelogs and state
        # orderstats:// = Faust's aiokafka transport with the batch-draining consumer.
        broker=";".join((SCHEME if settings.fast_consumer else "kafka") + "://" + host
                        for host in Connection.of(settings).bootstrap.split(",")),
        **faust_settings(settings.security),  # TLS and SASL, as every other client
        Stream=BatchStream,
        Schema=RawBytesSchema,
        # The tables' store. yarl parses "orderstats-rocksdb://" as an empty URL, which is
        # falsy, so Faust ignores it as a table's ``store=`` and falls back to this setting:
        # naming it here is what puts the tables on the bounded-memory store.
        store=STORE_URL,
        # One subdirectory per app id: tables of two deployments never share a RocksDB.
        datadir=str(Path(settings.data_dir) / settings.app_id),
        topic_partitions=settings.partitions,
        topic_allow_declare=True,
        topic_replication_factor=settings.replication_factor,  # what Faust declares itself
        key_serializer="json",
        value_serializer="raw",
        # Faust derives the URL other workers use (canonical_url) from web_host and
        # web_port, so ``orderstats worker --web-port`` moves both.
        web_bind=settings.web_bind,
        web_host=settings.advertised_host,
        web_port=settings.web_port,
        web_stats_enabled=False,
        web_graph_enabled=False,
        table_standby_replicas=settings.standby_replicas,
        # A worker that dies without leaving the group holds its partitions until the
        # session times out: this bounds the failover time.
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 6),
        broker_rebalance_timeout=max(30.0, settings.session_timeout_s * 3),
        # Offsets are committed only after the producer (changelogs) is flushed; frequent
        # commits keep the replay after a crash short.
        broker_commit_every=100_000,
        broker_commit_interval=1.0,
        # Per partition per fetch. aiokafka keeps a fetched response per partition until it
        # is consumed: 16 MiB x (orders + repartition + 32 changelog partitions at recovery)
        # held ~200 MB more at 1M events of state; 2 MiB (~7,000 orders) keeps batches full.
        consumer_max_fetch_size=2 * 1024 * 1024,
        broker_max_poll_records=10_000,
        stream_buffer_maxsize=max(4096, settings.batch_max * 2),
        producer_linger_ms=5,
        producer_max_batch_size=1024 * 1024,
        producer_max_request_size=DLQ_MAX_MESSAGE_BYTES,  # a dead letter of a near-limit event
        producer_acks=-1,
        # A rebalance waits for the batch in flight, so partitions are not closed under it.
        stream_wait_empty=True,
        consumer_auto_offset_reset="earliest",
    )


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even if a loop exists in this thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def build_app(settings: Settings, epoch: int = 1, worker: bool = True,
              shadow: bool = False) -> Orderstats:
    """The whole worker: topics, tables, the orders agent, start-up hooks and the web view.

    ``worker=False`` (other commands, ``--help``) leaves out the start-up hook that needs
    the broker."""
    app = faust.App(settings.app_id, **faust_config(settings, epoch))
    topics = Topics(repartition_topic(app.conf.id), settings.dlq_topic)
    # Both sources of the agent; the worker creates them (create_topics below).
    sources = app.topic(settings.orders_topic, topics.repartition, key_type=bytes,
                        value_type=bytes, key_serializer="raw", value_serializer="raw")
    tables = define_tables(app, TableOptions(settings.partitions, settings.rocksdb_cache_mb))
    conn = Connection.of(settings)
    probes = {ORDERS: LogProbe(conn, app.conf.id, settings.orders_topic),
              REPARTITION: LogProbe(conn, app.conf.id, topics.repartition)}
    processor = OrderBatchProcessor(
        tables, settings, topics, send=lambda *record: app.producer.send(*record),
        probes=probes, seek=lambda offsets: app.consumer.seek_wait(offsets),
        letters=SentLetters(conn, settings.dlq_topic),
        results_topic=results_topic(settings.app_id), epoch=epoch)
    app.orderstats_commits = processor  # commits what it wrote (app/faust_ext/consumer.py)
    define_orders_agent(app, sources, processor, settings)
    wire_lifecycle(app, settings, conn, tables, topics, list(probes.values()), worker,
                   processor.closer)
    cluster = Cluster(app, settings, processor.routing)
    reader = StatsReader(tables, settings, cluster.active_partitions)
    reader.epoch = epoch  # every answer names its epoch (as_of.epoch)
    register_views(app, reader, cluster, settings)
    if worker:  # registers, follows the control topic, retires after a switch
        cluster.watch = watch = watch_epochs(app, settings, conn, epoch, cluster)

        def previous_group() -> str | None:  # the epoch served before this one
            info = watch.state.shadow_info
            if watch.state.shadow != epoch or not info.get("previous"):
                return None
            return group_id(settings.app_id, int(info["previous"]))

        def serving() -> bool:  # until the control topic is read: as started
            return watch.state.epoch == epoch if watch.tail.caught_up else not shadow

        # Closed windows and dead letters are facts of the serving epoch only.
        processor.serve_when(serving, previous_group)
    return Orderstats(app, settings, sources, tables, processor)


def partition_mismatch(source: str, counts: dict[str, int], internal: list[str]) -> str | None:
    """One line when an internal topic's partition count differs from the source topic's."""
    want = counts[source]
    for name in internal:
        if counts[name] != want:
            return (f"topic {name} has {counts[name]} partitions but the orders topic {source} "
                    f"has {want}; the internal topics must match it. Delete {name} (its "
                    "contents are derived: `orderstats replay --to-earliest --rebuild` "
                    "recomputes them) or use another ORDERSTATS_APP_ID")
    return None


def wire_lifecycle(app: faust.App, settings: Settings, conn: Connection, tables: StatsTables,
                   topics: Topics, probes: list[LogProbe], worker: bool,
                   closer: WindowCloser | None = None) -> None:
    """Start-up (topics before subscribing, runtime tuning) and shutdown hooks."""

    limit_arenas()  # glibc malloc: before RocksDB and the executors start threads
    fix_mmap_threshold()  # glibc malloc: large blocks in pages of their own, given back

    @app.task
    async def tune() -> None:
        tune_runtime(app)
        await trim_periodically()  # glibc malloc: free pages back to the kernel, forever

    if worker:
        app.orderstats_kafka = liveness = KafkaLiveness(conn)  # read by /ready

        @app.task
        async def watch_kafka() -> None:
            await liveness.run()

    if settings.tracemalloc_file:
        @app.task
        async def memtrace() -> None:
            await trace_memory(settings.tracemalloc_file)

    @app.on_before_shutdown.connect
    async def close_probes(app: faust.App, **kwargs: object) -> None:
        for probe in probes:
            await probe.close()

    if not worker:
        return

    @app.on_worker_init.connect
    def create_topics(app: faust.App, **kwargs: object) -> None:
        Path(app.conf.datadir).mkdir(parents=True, exist_ok=True)
        # Before the consumer subscribes: a topic created after the first assignment is only
        # noticed at the next metadata refresh (minutes), so the worker would sit idle.
        # The changelogs too: one created after the first metadata fetch is left out of
        # assignments (so of recovery and standbys) until the next refresh, minutes later,
        # and a new owner would start that table from nothing.
        compacted = {"cleanup.policy": "compact"}
        # Dead letters carry the original value plus headers: room for any event a broker
        # with default limits accepted (a topic made elsewhere: agents/batch.py cuts values).
        dlq_config = {"max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)}
        results = results_topic(settings.app_id)
        wanted = {settings.orders_topic: None, settings.dlq_topic: dlq_config,
                  topics.repartition: None, results: compacted,
                  **{t.changelog_topic: compacted for t in tables.all}}
        try:
            counts = run_sync(ensure_topics(conn, wanted, settings.partitions))
        except KafkaError as exc:
            raise SystemExit(unreachable(conn, exc)) from None
        problem = partition_mismatch(settings.orders_topic, counts,
                                     [topics.repartition, *(t.changelog_topic for t in tables.all)])
        if problem:
            raise SystemExit(f"error: {problem}")
        topics.dlq_partitions = counts[settings.dlq_topic]  # a partition's letters: p % n
        if closer is not None:
            closer.partitions = counts[results]  # a partition's results: p % n
