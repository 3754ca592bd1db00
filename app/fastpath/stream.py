"""A Faust Stream whose ``take_events`` drains the channel queue in bulk.

The stock ``take_events`` pulls each event through the stream iterator (``sleep(0)``, a
queue get, the buffering processor, and an ``asyncio.Event`` handshake per event). This one
takes whatever the queue holds in one go and waits only when it is empty. Per event it does
what the stock iterator does for acking: track the message as unacked and ack every event
once the batch body has finished (the agent decides what is committed, see
app.fastpath.consumer). Around rebalances it drops events of a stale consumer generation
rather than handing them on, and takes nothing while a rebalance has flow control suspended
(the stock iterator's queue get blocks there); the agent notices the hole such a drop leaves
and re-reads it (agents.orders). Sensors still run when any are installed.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncGenerator, Sequence

from faust.streams import Stream
from faust.types import EventT
from mode.utils.times import Seconds, want_seconds


class BatchStream(Stream):
    async def take_events(self, max_: int,
                          within: Seconds) -> AsyncGenerator[Sequence[EventT], None]:
        self._finalized = True
        started_by_aiter = await self.maybe_start()
        app = self.app
        queue = self.channel.queue  # a mode ThrowableQueue: get_nowait fires pressure drops
        # Faust empties channel queues when a rebalance begins and again when flow resumes.
        # The second clear also drops events fetched in the new generation between Faust
        # resuming the partitions and resuming flow, and nothing fetches them again. Events
        # of an old generation are dropped below instead, so our queue is left alone.
        app.flow_control._queues.discard(queue)
        unacked_add = app.consumer._unacked_messages.add
        acking_topics = app.topics._acking_topics
        sensors = app.sensors
        timeout = want_seconds(within) if within else None
        loop = asyncio.get_running_loop()
        events: list[EventT] = []
        sensor_states: list[Any] = []
        try:
            while not self.should_stop:
                deadline = loop.time() + timeout if timeout else None
                while len(events) < max_:
                    if not app.flow_control.is_active():
                        # A rebalance is under way: take nothing more (the stock iterator
                        # blocks in the queue's get here). What we hold is processed and
                        # acked before Faust commits; what waits in the queue is of the old
                        # generation and is dropped when taken after the rebalance.
                        if events:
                            break
                        await app.flow_control.acquire()
                        continue
                    available = queue.qsize()
                    if available:
                        items = [queue.get_nowait()
                                 for _ in range(min(available, max_ - len(events)))]
                    else:
                        remaining = deadline - loop.time() if deadline else None
                        if remaining is not None and remaining <= 0:
                            break
                        try:
                            items = [await asyncio.wait_for(queue.get(), remaining)]
                        except asyncio.TimeoutError:
                            break
                        except StopAsyncIteration:
                            return  # the channel was closed: the worker is stopping
                    use_sensors = bool(sensors._sensors)
                    generation = app.consumer_generation_id
                    active = app.flow_control.is_active()
                    for event in items:
                        message = event.message
                        if not active or message.generation_id != generation:
                            # Fetched before a rebalance (or taken while one began): drop it
                            # untracked and unacked; the agent re-reads the hole.
                            continue
                        if message.topic in acking_topics and not message.tracked:
                            message.tracked = True  # Consumer.track_message, inlined
                            unacked_add(message)
                            if use_sensors:
                                self._on_message_in(message.tp, message.offset, message)
                        if use_sensors:
                            sensor_states.append(self._on_stream_event_in(
                                message.tp, message.offset, self, event))
                        events.append(event)
                if not events:
                    continue
                self._set_current_event(events[-1])
                self.events_total += len(events)
                try:
                    yield list(events)
                finally:
                    if sensor_states:
                        for event in events:
                            await self.ack(event)
                    else:
                        for event in events:
                            event.ack()
                    events.clear()
                    sensor_states.clear()
        finally:
            self._channel_stop_iteration(self.channel)
            if started_by_aiter:
                await self.stop()
                self.service_reset()
