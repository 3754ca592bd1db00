"""A Faust aiokafka Consumer that delivers a fetched batch under one rebalance race.

Stock ``Consumer._drain_messages`` wraps *every* message in ``wait_first(callback(msg),
suspend_flow.wait())``, four tasks and an ``asyncio.wait`` per message, so that a rebalance
can interrupt delivery. Here the race covers the delivery of the whole fetched batch: a
rebalance still interrupts it, and a message's read offset is still recorded only once it
was handed to its stream. Everything else is the stock loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, cast

from faust.transport import drivers
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as aiokafka_driver

from app.fastpath.conductor import SingleChannelConductor

SCHEME = "orderstats"  # broker URLs ``orderstats://host:port`` select this transport
YIELD_EVERY = 1000


class BatchDrainConsumer(aiokafka_driver.Consumer):
    async def _drain_messages(self, fetcher: Any) -> None:  # the stock method's structure
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for

        async def deliver(batch: AsyncIterator) -> None:
            since_yield = 0
            async for tp, message in batch:
                since_yield += 1
                if since_yield > YIELD_EVERY:
                    await asyncio.sleep(0)
                    since_yield = 0
                offset = message.offset
                r_offset = get_read_offset(tp)
                if r_offset is not None and offset < r_offset:
                    continue  # already delivered before a seek
                if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
                    await self._add_gap(tp, r_offset + 1, offset)
                if commit_every is not None and self._n_acked >= commit_every:
                    self._n_acked = 0
                    await self.commit()
                await callback(message)
                set_read_offset(tp, offset)

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                if self.suspend_flow.is_set():
                    # A rebalance is under way: wait for it instead of racing (and losing)
                    # a fresh delivery against it in a tight loop.
                    await self.wait(self.can_resume_flow)
                    continue
                self.diag.set_flag(CONSUMER_FETCHING)
                batch = cast(AsyncIterator, getmany(timeout=1.0))
                await self.sleep(0)
                if not self.should_stop:
                    await self.wait_first(deliver(batch), self.suspend_flow.wait())
                    self.diag.unset_flag(CONSUMER_FETCHING)
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


class BatchDrainTransport(aiokafka_driver.Transport):
    """Faust's aiokafka transport with our consumer and conductor (transport attributes)."""

    Consumer = BatchDrainConsumer
    Conductor = SingleChannelConductor


drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:BatchDrainTransport"
