"""A Faust Stream whose ``take_events`` drains the channel queue in bulk.

The stock ``take_events`` pulls each event through the stream iterator (``sleep(0)``, a
queue get, the buffering processor, and an ``asyncio.Event`` handshake per event). This one
takes whatever the queue holds in one go and waits only when it is empty. Per event it does
what the stock iterator does for acking: track the message as unacked and ack every event
once the batch body has finished (the agent decides what is committed, see
app.faust_ext.consumer), all under one hold of Faust's ack lock. Around rebalances it drops events of a stale consumer generation
rather than handing them on, and takes nothing while a rebalance has flow control suspended
(the stock iterator's queue get blocks there); the agent notices the hole such a drop leaves
and re-reads it (agents.admission). Sensors still run when any are installed.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncGenerator, Sequence

from faust.streams import Stream
from faust.types import EventT
from faust.types.tuples import ack_lock
from mode.utils.times import Seconds, want_seconds


class BatchStream(Stream):
    async def take_events(self, max_: int,
                          within: Seconds) -> AsyncGenerator[Sequence[EventT], None]:
        """OVERRIDES faust.streams.Stream.take_events (faust-streaming 0.15.3)."""
        self._finalized = True  # PRIVATE: as the stock method, the stream is now consumed
        started_by_aiter = await self.maybe_start()
        intake = Intake(self)
        timeout = want_seconds(within) if within else None
        try:
            while not self.should_stop:
                events = await intake.fill(max_, timeout)
                if events is None:
                    return  # the channel was closed: the worker is stopping
                if not events:
                    continue
                self._set_current_event(events[-1])  # PRIVATE: as the stock method
                self.events_total += len(events)
                try:
                    yield list(events)
                finally:
                    await intake.ack(events)
        finally:
            self._channel_stop_iteration(self.channel)  # PRIVATE: as the stock method
            if started_by_aiter:
                await self.stop()
                self.service_reset()


class Intake:
    """Takes a stream's events from its channel queue in bulk, tracking them for acks."""

    def __init__(self, stream: BatchStream) -> None:
        app = self.app = stream.app
        self.stream = stream
        self.queue = stream.channel.queue  # mode ThrowableQueue: get_nowait fires pressure drops
        # PRIVATE (faust.transport.consumer.FlowControlQueue registry, mode 0.4): Faust
        # empties channel queues when a rebalance begins and again when flow resumes. The
        # second clear also drops events fetched in the new generation between Faust
        # resuming the partitions and resuming flow, and nothing fetches them again. Events
        # of an old generation are dropped in accept() instead, so our queue is left alone.
        app.flow_control._queues.discard(self.queue)
        self.unacked_add = app.consumer._unacked_messages.add  # PRIVATE: Consumer.track_message
        self.acking_topics = app.topics._acking_topics  # PRIVATE: Conductor.acks_enabled_for
        self.sensors = app.sensors
        self.sensor_states: list[Any] = []

    async def fill(self, max_: int, timeout: float | None) -> list[EventT] | None:
        """Up to ``max_`` events, waiting at most ``timeout`` for the first ones."""
        app, queue = self.app, self.queue
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        events: list[EventT] = []
        while len(events) < max_:
            if not app.flow_control.is_active():
                # A rebalance is under way: take nothing more (the stock iterator blocks in
                # the queue's get here). What we hold is processed and acked before Faust
                # commits; what waits in the queue is of the old generation and is dropped
                # when taken after the rebalance.
                if events:
                    break
                await app.flow_control.acquire()
                continue
            available = queue.qsize()
            if available:
                items = [queue.get_nowait() for _ in range(min(available, max_ - len(events)))]
            else:
                remaining = deadline - loop.time() if deadline else None
                if remaining is not None and remaining <= 0:
                    break
                try:
                    items = [await asyncio.wait_for(queue.get(), remaining)]
                except asyncio.TimeoutError:
                    break
                except StopAsyncIteration:
                    return None
            self.accept(items, events)
        return events

    def accept(self, items: list[EventT], events: list[EventT]) -> None:
        """Track and keep the items of the current generation; drop the others unacked."""
        app, stream = self.app, self.stream
        use_sensors = bool(self.sensors._sensors)  # PRIVATE: SensorDelegate's sensor set
        generation = app.consumer_generation_id
        active = app.flow_control.is_active()
        for event in items:
            message = event.message
            if not active or message.generation_id != generation:
                continue  # fetched before a rebalance: the agent re-reads the hole
            if message.topic in self.acking_topics and not message.tracked:
                message.tracked = True  # Consumer.track_message, inlined
                self.unacked_add(message)
                if use_sensors:
                    stream._on_message_in(message.tp, message.offset, message)  # PRIVATE
            if use_sensors:
                self.sensor_states.append(stream._on_stream_event_in(  # PRIVATE
                    message.tp, message.offset, stream, event))
            events.append(event)

    async def ack(self, events: list[EventT]) -> None:
        """Ack every event of a finished batch, as the stock iterator does one by one."""
        if self.sensor_states:
            for event in events:
                await self.stream.ack(event)
        else:
            ack_all(self.app.consumer, events)
        events.clear()
        self.sensor_states.clear()


def ack_all(consumer: Any, events: list[EventT]) -> None:
    """``event.ack()`` for each event (Event.ack -> Message.ack -> Consumer.ack, faust-streaming
    0.15.3) under one hold of Faust's ack lock instead of three per event: the same refcount
    decrement and final ack. PRIVATE: ``faust.types.tuples.ack_lock``, the re-entrant lock
    Message.ack and Consumer.ack take."""
    with ack_lock:
        for event in events:
            message = event.message
            if not message.acked:  # Message.ack
                refcount = message.refcount = max(message.refcount - 1, 0)  # Message.decref
                if not refcount:
                    message.on_final_ack(consumer)  # -> Consumer.ack
