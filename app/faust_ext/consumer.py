"""A Faust aiokafka Consumer that delivers a fetched batch under one rebalance race.

Stock ``Consumer._drain_messages`` wraps *every* message in ``wait_first(callback(msg),
suspend_flow.wait())``, four tasks and an ``asyncio.wait`` per message, so that a rebalance
can interrupt delivery. Here the race covers the delivery of the whole fetched batch: a
rebalance still interrupts it, and a message's read offset is still recorded only once it
was handed to its stream. Everything else is the stock loop.

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
from typing import Any, AsyncIterator, Optional, Protocol, cast

from faust.transport import drivers
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP

from app.faust_ext.conductor import SingleChannelConductor
from app.faust_ext.producer import IdempotentProducer

SCHEME = "orderstats"  # broker URLs ``orderstats://host:port`` select this transport
YIELD_EVERY = 1000


class CommitSource(Protocol):
    """Who decides the committed offsets of its topics (the agent that writes their results)."""

    topics: set[str]

    def commit_offset(self, topic: str, partition: int) -> int | None: ...


class BatchDrainConsumer(aiokafka_driver.Consumer):
    async def _drain_messages(self, fetcher: Any) -> None:
        """OVERRIDES (PRIVATE) faust.transport.consumer.Consumer._drain_messages
        (faust-streaming 0.15.3): same loop, one rebalance race per fetched batch. Reads the
        private ``_stopped``, ``_read_offset``, ``_commit_every`` and ``_n_acked`` as it does."""
        getmany = self.getmany
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
                # Not raced against suspend_flow (see the module docstring); the stock
                # getmany stops converting records once flow is suspended, and the
                # rebalance then re-seeks every partition to what was really processed.
                batch = [pair async for pair in cast(AsyncIterator, getmany(timeout=1.0))]
                self.diag.unset_flag(CONSUMER_FETCHING)
                if batch and not self.should_stop:
                    await self.wait_first(self._deliver(batch), self.suspend_flow.wait())
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

    async def _deliver(self, batch: list[tuple[Any, Any]]) -> None:
        """Hand a fetched batch to the streams, recording each read offset after delivery."""
        callback = self.callback
        set_read_offset = self._read_offset.__setitem__  # PRIVATE, as the stock method
        commit_every = self._commit_every  # PRIVATE, as the stock method
        since_yield = 0
        for tp, message in batch:
            since_yield += 1
            if since_yield > YIELD_EVERY:
                await asyncio.sleep(0)
                since_yield = 0
            # Re-deliveries and jumps go to the agent as they are: it admits offsets in
            # order and re-reads what went missing (no read-offset skip, no gaps).
            if commit_every is not None and self._n_acked >= commit_every:  # PRIVATE
                self._n_acked = 0
                await self.commit()
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
