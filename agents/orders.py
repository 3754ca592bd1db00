"""The ``orders`` agent: where an order is counted.

The agent reads two sources: the orders topic, and the repartition topic to which it
forwards every order whose record is not keyed and partitioned the way the store's state is
(agents/routing.py). Events come in batches (``Stream.take_events``). For each partition:
  1. admit   agents/admission.py   each source's offsets in order, no hole (holes are re-read)
  2. prepare agents/batch.py       decode, validate, route, dedup, aggregate (nothing written)
  3. commit  agents/batch.py       forward and dead-letter (acked), then one write per changed
                                   key: RocksDB + changelog, then the partition's progress
The offsets committed to Kafka are the ones written here (:meth:`OrderBatchProcessor
.commit_offset`, read by app/faust_ext/consumer.py), and Faust flushes the changelogs before
it commits them. A failure while writing stops the process; the restart replays from the
committed offsets and the fences (tables/fence.py) make that exact.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Callable, Sequence

import faust
from aiokafka.errors import KafkaError
from faust.types import TP, EventT

from agents.admission import Admission, Probe, Seek
from agents.batch import BatchUnit, Letters, Send, Topics
from agents.closer import WindowCloser
from agents.partition import PartitionState
from agents.routing import KeyRouting
from agents.window_scan import WindowScan
from app import metrics
from app.calendar import base_name
from app.settings import Settings
from tables.schema import StatsTables
from tables.store import StorageError
from tables.values import ORDERS, REPARTITION
from agents.rollups import rollups_of, window_label
from tables.windows import TumblingWindows

log = logging.getLogger(__name__)

CLOSE_TICK_S = 1.0  # how often idle partitions are looked at for windows to close
# After a shadow epoch starts serving, the old epoch's workers stop sending dead letters when
# they read the switch from the control topic (about a second); the hand-over waits this long.
HANDOVER_DELAY_S = 5.0
SETTLE_TIMEOUT_S = 30.0  # how long a stop or rebalance waits for the batch in flight


def define_orders_agent(app: faust.App, topic: faust.TopicT,
                        processor: "OrderBatchProcessor", settings: Settings) -> None:
    """Declare the agent on ``app``: batches of ``topic`` go to ``processor``."""

    @app.agent(topic, name="orders", concurrency=1)  # concurrency 1: faust-streaming #606
    async def orders(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max, settings.batch_within_s):
            await processor.process(events)

    @app.timer(interval=CLOSE_TICK_S)
    async def close_idle_windows() -> None:
        # Partitions that receive nothing get no batch: their windows close here (the wall
        # clock rule). Only once this worker's tables are recovered and it owns partitions,
        # and not once it is stopping (its producer may be gone: a close could not publish).
        if not app.should_stop and not app.rebalancing \
                and app.tables.recovery.completed.is_set():
            await processor.tick()

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: set[TP], **kwargs: object) -> None:
        await processor.forget(revoked)

    @app.on_before_shutdown.connect
    async def stop_scans(app: faust.App, **kwargs: object) -> None:
        await processor.stop_scans()

    @app.on_partitions_assigned.connect
    async def on_assigned(app: faust.App, assigned: set[TP], **kwargs: object) -> None:
        processor.assign(assigned)


class OrderBatchProcessor:
    """Applies batches of order events to the tables; one instance per worker."""

    def __init__(self, tables: StatsTables, settings: Settings, topics: Topics, send: Send,
                 probes: dict[int, Probe], seek: Seek, letters: Letters | None = None,
                 results_topic: str | None = None, epoch: int = 1) -> None:
        self.tables = tables
        self.letters = letters
        self.settings = settings
        self.sources = {settings.orders_topic: ORDERS, topics.repartition: REPARTITION}
        self.topics = set(self.sources)  # the topics whose committed offsets we decide
        self.admission = {ORDERS: Admission(settings.orders_topic, probes[ORDERS], seek),
                          REPARTITION: Admission(topics.repartition, probes[REPARTITION], seek)}
        self.routing = KeyRouting(settings.key_format, settings.partitions)
        base = TumblingWindows(settings.window_size_s, settings.retention_s)
        rollups = rollups_of(settings.windows)
        self.closer = None if results_topic is None else WindowCloser(
            base, base_name(settings.window_size_s), rollups, settings.windows.grace_s,
            results_topic, send, epoch, window_label(rollups))
        self.unit = BatchUnit(tables, send, topics, base, self.routing, settings.mapping,
                              rollups, self.closer)
        self.partitions: dict[int, PartitionState] = {}
        self.owned: set[int] = set()
        self._batch = asyncio.Lock()  # one batch at a time, and no revocation under it
        self._merges: set[asyncio.Task] = set()  # window scans' merges (kept referenced)
        self.started = False
        self.serving: Callable[[], bool] = lambda: True
        self.previous_group: Callable[[], str | None] = lambda: None
        self._serving_since: float | None = None
        self.stopped = False  # the worker is stopping: no batch, tick or merge writes

    def serve_when(self, serving: Callable[[], bool],
                   previous_group: Callable[[], str | None]) -> None:
        """Results and dead letters are the serving epoch's (a shadow rebuild's epoch sends
        neither until the switch); ``previous_group``: the consumer group of the epoch
        served before this one, whose dead letters this one continues."""
        self.serving = self.unit.serving = serving
        self.previous_group = previous_group
        if self.closer is not None:
            self.closer.publishing = serving

    def commit_offset(self, topic: str, partition: int) -> int | None:
        """The offset Kafka may record as consumed (None: nothing new written)."""
        state = self.partitions.get(partition)
        return None if state is None else state.committable.get(self.sources[topic])

    async def forget(self, tps: set[TP]) -> None:
        """Drop in-memory state of partitions that left us; reloaded from tables if they
        return. Waits for the batch in flight first: a batch still sending dead letters or
        writing after the revocation would race the partition's new owner (letters sent
        twice, a progress written under it)."""
        async with self._batch:
            for tp in tps:
                if tp.topic in self.sources:
                    state = self.partitions.pop(tp.partition, None)
                    self.owned.discard(tp.partition)
                    if state is not None and state.scan is not None:
                        await state.scan.stopped()  # before Faust closes its RocksDB

    def assign(self, tps: set[TP]) -> None:
        """The partitions this worker now owns; records of others still buffered from
        before a rebalance are left to their new owner."""
        self.owned.update(tp.partition for tp in tps if tp.topic in self.sources)

    def state(self, partition: int) -> PartitionState:
        """A partition's state, loaded from the tables at its first batch or tick here; its
        windows are scanned beside its batches (agents/window_scan.py)."""
        state = self.partitions.get(partition)
        if state is None:
            state = self.partitions[partition] = PartitionState.load(
                self.tables, partition, self.settings.dedup_horizon_s * 1000)
            state.last_event_wall_ms = int(time.time() * 1000)  # see closing.close_limit
        closer = self.closer
        if closer is not None and state.scan is None and (
                not state.windows_indexed or (not state.scanned and closer.publishing())):
            self._scan(partition, state, closer)  # loaded, or this epoch has begun to serve
        return state

    def _scan(self, partition: int, state: PartitionState, closer: WindowCloser) -> None:
        windows = self.tables.windows
        windows.local_keys(partition)  # opens the partition's RocksDB on the loop's thread
        confirmed, publishing = state.results_confirmed_ms, closer.publishing()
        scan = state.scan = WindowScan(
            lambda stop: closer.scan(windows, partition, confirmed, stop),
            f"window-scan-{partition}")

        async def merge() -> None:
            try:
                found = await scan.done
            except Exception:
                log.exception("partition %s: the window scan failed; it starts again",
                              partition)
                found = None
            async with self._batch:  # not while a batch of this partition is half done
                if self.stopped or self.partitions.get(partition) is not state:
                    return  # revoked meanwhile, or the worker is stopping
                state.scan = None
                if found is not None:
                    closer.merge(state, found, publishing)

        task = asyncio.ensure_future(merge())
        self._merges.add(task)
        task.add_done_callback(self._merges.discard)

    async def settle(self, stopping: bool) -> None:
        """Wait for the batch in flight (Faust calls this before it closes the tables, see
        app/faust_ext/consumer.py); when the worker is ``stopping``, nothing is written
        after it: the records delivered meanwhile are not committed and are read again by
        the next owner. Bounded: a batch stuck on an unreachable broker does not hold the
        shutdown (its write then fails and the worker exits without committing it)."""
        self.stopped = self.stopped or stopping  # batches not yet begun write nothing

        async def idle() -> None:
            async with self._batch:
                pass

        try:
            await asyncio.wait_for(idle(), SETTLE_TIMEOUT_S)
        except asyncio.TimeoutError:
            log.warning("the batch in flight did not finish in %.0f s; stopping under it",
                        SETTLE_TIMEOUT_S)

    async def stop_scans(self) -> None:
        """Stop the window scans (the worker is shutting down)."""
        for state in list(self.partitions.values()):
            if state.scan is not None:
                await state.scan.stopped()

    async def tick(self) -> None:
        """Close (and publish) what is due on partitions that received no batch: a quiet
        partition never holds its last window open forever. Loads the state of owned
        partitions that had no batch since the assignment."""
        if self.closer is None:
            return
        serving = self.serving()
        if serving and self._serving_since is None:
            self._serving_since = time.monotonic()
        elif not serving:
            self._serving_since = None
        try:
            async with self._batch:
                if self.stopped:
                    return
                if serving and time.monotonic() - self._serving_since >= HANDOVER_DELAY_S:
                    for p in sorted(self.owned):
                        state = self.partitions.get(p)
                        if state is not None and state.letters_deferred:
                            await self.hand_over(p, state)
                now_ms = int(time.time() * 1000)
                plans = []
                for p in sorted(self.owned):
                    state = self.state(p)
                    if self.closer.has_work(state, now_ms):
                        plans.append(self.unit.prepare(p, state, {}, now_ms))
                await self._commit(plans)
                metrics.OPEN_WINDOWS.set(sum(len(self.partitions[p].open_windows)
                                             for p in self.owned if p in self.partitions))
        except StorageError as exc:
            self._stop_on_storage(exc)

    async def admit(self, partition: int, events: list[EventT],
                    source: int = ORDERS) -> list[EventT]:
        state = self.state(partition)
        if state.lettered is None:
            await self.check_letters(partition, state)
        cursor = state.cursors[source]
        return await self.admission[source].admit(partition, cursor, events)

    async def check_letters(self, partition: int, state: PartitionState) -> None:
        """At a partition's first batch here: which records past its progress already have
        their dead letter (sent by an owner killed before its progress was written), so they
        are not dead-lettered twice. Unknown (no dead-letter offset in an older progress
        record, or no answer from Kafka): none, at-least-once as before."""
        state.lettered = set()
        n = self.unit.topics.dlq_partitions
        if self.letters is None or not n:
            return
        dlq_partition = partition % n
        try:
            if state.dlq_next < 0 and state.last_offsets[ORDERS] >= 0:
                state.dlq_next = await asyncio.wait_for(self.letters.end(dlq_partition), 30)
                return
            sent, end = await asyncio.wait_for(
                self.letters.since(dlq_partition, state.dlq_next, partition), 60)
        except (asyncio.TimeoutError, KafkaError) as exc:
            log.warning("partition %s: dead letters sent before a restart unknown (%r); "
                        "some may be sent twice", partition, exc)
            return
        sources = self.sources
        state.lettered = {(topic, offset) for topic, offset in sent if topic in sources
                          and offset > state.last_offsets[sources[topic]]}
        log.info("partition %s: dead-letter partition %s read from %s to %s: %s letters "
                 "past the progress (they are not sent again)", partition, dlq_partition,
                 state.dlq_next if state.dlq_next >= 0 else "its start", end,
                 len(state.lettered))
        state.dlq_next = max(state.dlq_next, end)

    async def hand_over(self, partition: int, state: PartitionState) -> None:
        """Send the dead letters this epoch held back while it did not serve, for the events
        the previous epoch had not handled: from the previous group's committed offset (the
        previous epoch letters before it commits) to this epoch's progress, each invalid
        record that has no dead letter yet (the dead-letter partition, read from where this
        epoch started, says which have). Exact once the previous epoch's workers stopped
        sending letters (HANDOVER_DELAY_S after the switch)."""
        n = self.unit.topics.dlq_partitions
        group = self.previous_group()
        state.letters_deferred = False
        if self.letters is None or not n or not group:
            return
        topic = self.settings.orders_topic
        dlq_partition = partition % n
        try:
            start = await asyncio.wait_for(self.letters.committed(group, topic, partition), 30)
            sent, end = await asyncio.wait_for(
                self.letters.since(dlq_partition, state.dlq_next, partition), 60)
            records = await asyncio.wait_for(self.letters.records(
                topic, partition, start or 0, state.last_offsets[ORDERS] + 1), 120)
        except (asyncio.TimeoutError, KafkaError) as exc:
            log.error("partition %s: dead letters held back during the shadow rebuild could "
                      "not be handed over (%r); `orderstats dlq` may lack some", partition, exc)
            return
        missing = [(r, reason) for r in records
                   if (reason := self.unit.invalid_reason(r)) is not None
                   and (r.topic, r.offset) not in sent]
        acks = await self.unit.send_letters(missing, dlq_partition)
        state.dlq_next = max([end, state.dlq_next, *(m.offset + 1 for m in acks)])
        log.info("partition %s: dead letters handed over from epoch group %s: offsets %s to "
                 "%s read, %s letters sent", partition, group, start or 0,
                 state.last_offsets[ORDERS], len(acks))

    async def process(self, events: Sequence[EventT]) -> None:
        """Admit, prepare and commit one batch, partition by partition.

        RocksDB refusing a write (disk full: loading a partition, the dedup index while
        preparing, the tables while committing) stops the worker with one line and no
        traceback: nothing of this batch is committed, the restart replays it exactly."""
        try:
            async with self._batch:
                if not self.stopped:  # else: not committed, read again after the restart
                    await self._process(events)
        except StorageError as exc:
            self._stop_on_storage(exc)

    @staticmethod
    def _stop_on_storage(exc: StorageError) -> None:
        log.critical("%s; stopping without committing past what was written; free "
                     "space and restart", exc)
        logging.shutdown()
        os._exit(74)  # EX_IOERR

    async def _process(self, events: Sequence[EventT]) -> None:
        started = time.perf_counter()
        if self.settings.test_batch_delay_s:  # TEST KNOB (bench/gateway.py): a slow stats side
            await asyncio.sleep(self.settings.test_batch_delay_s)
        if not self.started:
            self.started = True
            metrics.FIRST_BATCH.set_to_current_time()
        groups: dict[tuple[int, int], list[EventT]] = {}
        sources = self.sources
        owned = self.owned
        for event in events:
            msg = event.message
            if msg.partition in owned:
                groups.setdefault((msg.partition, sources[msg.topic]), []).append(event)
        # A partition's first batch here reads its dead-letter partition (check_letters):
        # all of them at once, not one after another (0.1 s each, 0.8 s of a first batch).
        unchecked = [p for p in dict.fromkeys(p for p, _ in groups)
                     if self.state(p).lettered is None]
        if unchecked:
            await asyncio.gather(*(self.check_letters(p, self.state(p)) for p in unchecked))
        by_partition: dict[int, dict[int, list[EventT]]] = {}
        for (p, source), evs in groups.items():
            admitted = await self.admit(p, evs, source)
            if admitted:
                by_partition.setdefault(p, {})[source] = admitted
        now_ms = int(time.time() * 1000)
        plans = [self.unit.prepare(p, self.state(p), by_source, now_ms)
                 for p, by_source in by_partition.items()]
        await self._commit(plans)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.LAST_BATCH.set_to_current_time()
        metrics.BATCH_EVENTS.observe(len(events))

    async def _commit(self, plans: list) -> None:
        """Commit prepared plans; any failure but a full disk stops the worker hard."""
        try:
            # A rebalance waits for this batch (stream_wait_empty), so every partition
            # planned here is still ours and open until the batch is acked.
            for plan in plans:
                await self.unit.commit(plan)
        except StorageError:
            raise  # process() stops the worker with one line
        except BaseException:
            # Faust would ack this batch although its state is half written: stop hard, the
            # restart replays from the last commit and the fences keep the counts exact.
            log.critical("writing a batch failed; exiting so no offset is committed",
                         exc_info=True)
            logging.shutdown()
            os._exit(70)
