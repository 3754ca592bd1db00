"""A Faust aiokafka Consumer that delivers a fetched batch under one rebalance race.

Stock ``Consumer._drain_messages`` wraps *every* message in ``wait_first(callback(msg),
suspend_flow.wait())``, four tasks and an ``asyncio.wait`` per message, so that a rebalance
can interrupt delivery. Here the race covers the delivery of the whole fetched batch: a
rebalance still interrupts it, and a message's read offset is still recorded only once it
was handed to its stream. Everything else is the stock loop.

Fetched records are converted and delivered a partition at a time (:meth:`_fetch_runs`,
:meth:`_deliver`): the stock ``getmany`` is an async generator that, per record, asks the
consumer thread for the partition's highwater, feeds Faust's Monitor and goes through a
round-robin scheduler, and the stock delivery awaits the conductor once per message. Here the
highwater and Monitor are read once per partition run, and a run goes to the conductor as one
unit (``SingleChannelConductor.deliver_run``), which puts the events of a single-subscriber
partition in its stream's queue without a coroutine per message. The order within a
partition is the fetch order, as before; partitions are no longer interleaved record by
record (nothing depends on that: the agent works per partition).

Which offsets are committed is decided by the agent, not by Faust's acked-offset ledger: a
:class:`CommitSource` set on the app as ``orderstats_commits`` says up to where each of its
topics' partitions was written (agents/orders.py). Faust's ledger treats any jump in
delivered offsets as a gap to commit over, and around a rebalance it can jump over records
that were fetched but never processed; the agent instead re-reads those (agents.admission, app.kafka.log_probe).

The fetch itself is never raced. It runs on the aiokafka consumer thread, and cancelling
the coroutine that awaits it does not stop it there: an abandoned fetch still moves the
fetch positions past the records it returns to nobody. If it completes after a rebalance
re-seeked the partitions, those records are skipped for good (Faust then records a gap and
commits over it; changelog records skipped that way leave a recovered table stale).
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional, Protocol

from faust.transport import drivers
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from app.faust_ext.conductor import SingleChannelConductor
from app.faust_ext.producer import IdempotentProducer

SCHEME = "orderstats"  # broker URLs ``orderstats://host:port`` select this transport
YIELD_EVERY = 1000


class CommitSource(Protocol):
    """Who decides the committed offsets of its topics (the agent that writes their results)."""

    topics: set[str]

    def commit_offset(self, topic: str, partition: int) -> int | None: ...

    async def settle(self, stopping: bool) -> None:
        """Return once nothing is being written; ``stopping``: and write nothing more."""


class BatchDrainConsumer(aiokafka_driver.Consumer):
    async def wait_empty(self) -> None:
        """EXTENDS faust.transport.consumer.Consumer.wait_empty: first waits for the commit
        source's batch in flight. At shutdown the stock wait returns at once (the consumer
        is already stopping), after which Faust closes the tables and then the producer
        under a batch that is still writing: its next send failed and the worker exited 70."""
        source: CommitSource | None = getattr(self.app, "orderstats_commits", None)
        if source is not None:
            await source.settle(stopping=self.app.should_stop)
        await super().wait_empty()

    async def _drain_messages(self, fetcher: Any) -> None:
        """OVERRIDES (PRIVATE) faust.transport.consumer.Consumer._drain_messages
        (faust-streaming 0.15.3): same loop, one rebalance race per fetched batch. Reads the
        private ``_stopped``, ``_read_offset``, ``_commit_every`` and ``_n_acked`` as it does."""
        fetch_runs = self._fetch_runs
        consumer_should_stop = self._stopped.is_set  # PRIVATE, as the stock method
        fetcher_should_stop = fetcher._stopped.is_set  # PRIVATE, as the stock method
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                if self.suspend_flow.is_set():
                    # A rebalance is under way: wait for it instead of racing (and losing)
                    # a fresh delivery against it in a tight loop.
                    await self.wait(self.can_resume_flow)
                    continue
                self.diag.set_flag(CONSUMER_FETCHING)
                # Not raced against suspend_flow (see the module docstring); like the stock
                # getmany, _fetch_runs stops converting records once flow is suspended, and
                # the rebalance then re-seeks every partition to what was really processed.
                runs = await fetch_runs(timeout=1.0)
                self.diag.unset_flag(CONSUMER_FETCHING)
                if runs and not self.should_stop:
                    await self.wait_first(self._deliver(runs), self.suspend_flow.wait())
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _fetch_runs(self, timeout: float) -> list[tuple[TP, list[Any]]]:
        """One fetch as (partition, messages) runs: the stock ``Consumer.getmany``
        (faust-streaming 0.15.3) without its per-record generator step, scheduler, highwater
        and Monitor calls per record. Reads the PRIVATE ``_wait_next_records`` and
        ``_buffered_partitions`` as the stock method does."""
        records, active = await self._wait_next_records(timeout)  # PRIVATE
        if records is None or self.should_stop:
            return []
        app = self.app
        generation = app.consumer_generation_id
        if not self.flow_active:
            # As the stock getmany: flow stopped between the fetch and here.
            try:
                await self.perform_seek()
            except Exception as ex:
                self.log.warning(f"exception performing seek when flow not active {ex}")
            return []
        buffered = self._buffered_partitions  # PRIVATE, as the stock getmany
        track_end = app.monitor.track_tp_end_offset
        highwater = self.highwater
        runs: list[tuple[TP, list[Any]]] = []
        for tp, batch in records.items():
            # The stock getmany checks these before each record. Nothing here awaits, so
            # the rebalance handling (on this loop) cannot change them within a run.
            if not self.flow_active or app.consumer_generation_id != generation:
                break
            if active is not None and tp not in active and tp not in buffered:
                continue
            if not batch:
                continue
            track_end(tp, highwater(tp))
            topic, partition = tp.topic, tp.partition
            messages = [
                ConsumerMessage(topic, partition, r.offset,
                                None if r.timestamp is None else r.timestamp / 1000.0,
                                r.timestamp_type, r.headers, r.key, r.value, r.checksum,
                                r.serialized_key_size, r.serialized_value_size, tp,
                                generation_id=generation)
                for r in batch]  # Consumer._to_message, inlined
            runs.append((tp, messages))
        return runs

    async def _deliver(self, runs: list[tuple[TP, list[Any]]]) -> None:
        """Hand each partition's run to the streams, recording read offsets after delivery."""
        deliver_run = getattr(self.app.topics, "deliver_run", None)  # SingleChannelConductor
        if deliver_run is None:  # another conductor: message by message
            deliver_run = self._deliver_each
        set_read_offset = self._read_offset.__setitem__  # PRIVATE, as the stock method
        commit_every = self._commit_every  # PRIVATE, as the stock method
        for tp, messages in runs:
            # Re-deliveries and jumps go to the agent as they are: it admits offsets in
            # order and re-reads what went missing (no read-offset skip, no gaps).
            if commit_every is not None and self._n_acked >= commit_every:  # PRIVATE
                self._n_acked = 0
                await self.commit()
            for start in range(0, len(messages), YIELD_EVERY):
                await deliver_run(tp, messages[start:start + YIELD_EVERY], set_read_offset)
                await asyncio.sleep(0)  # as before: let the agent run between chunks

    async def _deliver_each(self, tp: TP, messages: list[Any],
                            set_read_offset: Any) -> None:
        callback = self.callback
        for message in messages:
            await callback(message)
            set_read_offset(tp, message.offset)

    def _new_offset(self, tp: TP) -> Optional[int]:
        """OVERRIDES (PRIVATE) faust.transport.consumer.Consumer._new_offset (faust-streaming
        0.15.3): for the agent's topic, the offset to commit is the one the agent wrote."""
        source: CommitSource | None = getattr(self.app, "orderstats_commits", None)
        if source is None or tp.topic not in source.topics:
            return super()._new_offset(tp)
        # Faust's ledger (PRIVATE _acked, _acked_index, _gap) is not used for this topic:
        # keep it from growing.
        self._acked[tp].clear()
        self._acked_index[tp].clear()
        self._gap.pop(tp, None)
        return source.commit_offset(tp.topic, tp.partition)


class BatchDrainTransport(aiokafka_driver.Transport):
    """Faust's aiokafka transport with our consumer, conductor and idempotent producer
    (transport attributes)."""

    Consumer = BatchDrainConsumer
    Conductor = SingleChannelConductor
    Producer = IdempotentProducer


drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:BatchDrainTransport"
