"""A Faust TopicConductor with a lean per-message handler for single-subscriber partitions.

The stock handler takes an ``asyncio.Lock`` per message, acquires flow control, asks the
producer buffer whether to wait, and handles fan-out to many channels. When a partition
feeds exactly one channel, flow is open, the producer buffer is not over its limit and the
channel's queue has room, this handler does only what delivery needs (refcount, decode,
put with the same back-pressure callbacks); in every other case it calls the stock handler.

:meth:`SingleChannelConductor.deliver_run` takes a partition's fetched run at once (from
app.faust_ext.consumer): on the lean path it puts as many events as the stream's queue has
room for in one synchronous pass, without awaiting the handler per message; the rest, and
every case the lean path does not cover, goes message by message as before.
"""

from __future__ import annotations

from typing import Any, Callable, MutableSet, Sequence

from faust.exceptions import KeyDecodeError, ValueDecodeError
from faust.transport.conductor import Conductor
from faust.types import TP, Message

ReadOffset = Callable[[TP, int], None]  # records a message's offset as read (Consumer)


class SingleChannelConductor(Conductor):
    def _compile_message_handler(self) -> Any:
        """OVERRIDES (PRIVATE) faust.transport.conductor.Conductor._compile_message_handler
        (faust-streaming 0.15.3): the stock handler minus the per-message lock when no
        resubscription holds it (reads the private ``_tp_to_callback`` and its lock)."""
        if self.app.client_only:
            return super()._compile_message_handler()
        get_callback_for_tp = self._tp_to_callback.__getitem__
        lock = self._tp_to_callback_lock

        async def on_message(message: Message) -> None:
            if lock.locked():  # a resubscription is rebuilding the callbacks
                async with lock:
                    callback = get_callback_for_tp(message.tp)
            else:
                callback = get_callback_for_tp(message.tp)
            return await callback(message)

        return on_message

    async def deliver_run(self, tp: TP, messages: Sequence[Message],
                          set_read_offset: ReadOffset) -> None:
        """Deliver one partition's messages in order, recording each one's offset as read
        once it is handed on. Reads the PRIVATE ``_tp_to_callback`` and its lock."""
        handler = None
        if not self.app.client_only and not self._tp_to_callback_lock.locked():
            handler = self._tp_to_callback.get(tp)
        run = getattr(handler, "run", None)
        if run is not None:
            return await run(messages, set_read_offset)
        on_message = self.on_message  # the stock path, including a resubscription's lock
        for message in messages:
            await on_message(message)
            set_read_offset(tp, message.offset)

    def _build_handler(self, tp: TP, channels: MutableSet[Any]) -> Any:
        """OVERRIDES (PRIVATE) faust.transport.conductor.Conductor._build_handler
        (faust-streaming 0.15.3): a lean path for one channel, the stock handler otherwise."""
        stock = super()._build_handler(tp, channels)
        app = self.app
        flow_active = app.flow_control.is_active
        producer_buffer = app.producer.buffer
        max_pending = producer_buffer.max_messages
        on_topic_buffer_full = app.sensors.on_topic_buffer_full
        consumer = app.consumer

        def on_pressure_high() -> None:
            on_topic_buffer_full(tp)
            consumer.on_buffer_full(tp)

        def on_pressure_drop() -> None:
            consumer.on_buffer_drop(tp)

        async def on_message(message: Message) -> None:
            if len(channels) != 1 or not flow_active() \
                    or producer_buffer.pending.qsize() > max_pending:
                return await stock(message)
            (channel,) = channels
            queue = channel.queue
            if queue.full():
                return await stock(message)
            message.refcount += 1
            try:
                event = await channel.decode(message, propagate=True)
            except (KeyDecodeError, ValueDecodeError):
                message.refcount -= 1
                return await stock(message)  # the stock error handling
            queue.put_nowait_enhanced(event, on_pressure_high=on_pressure_high,
                                      on_pressure_drop=on_pressure_drop)

        async def on_run(messages: Sequence[Message], set_read_offset: ReadOffset) -> None:
            """on_message for each of ``messages``, the lean path without a coroutine per
            message: the queue's room is taken once (only this partition's delivery puts
            into it, the stream only takes, so the room can only grow meanwhile)."""
            i, n = 0, len(messages)
            while i < n:
                if len(channels) == 1 and flow_active() \
                        and producer_buffer.pending.qsize() <= max_pending:
                    (channel,) = channels
                    queue, decode = channel.queue, channel.decode
                    end = n if queue.maxsize <= 0 else min(n, i + queue.maxsize - queue.qsize())
                    put = queue.put_nowait_enhanced
                    while i < end and flow_active():
                        message = messages[i]
                        message.refcount += 1
                        try:
                            event = await decode(message, propagate=True)
                        except (KeyDecodeError, ValueDecodeError):
                            message.refcount -= 1
                            break  # the stock error handling, below
                        put(event, on_pressure_high=on_pressure_high,
                            on_pressure_drop=on_pressure_drop)
                        set_read_offset(tp, message.offset)
                        i += 1
                    if i == n:
                        break
                message = messages[i]  # not on the lean path: queue full, flow stopped, ...
                await on_message(message)
                set_read_offset(tp, message.offset)
                i += 1

        on_message.run = on_run  # type: ignore[attr-defined]  # read by deliver_run
        return on_message
