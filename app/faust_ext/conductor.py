"""A Faust TopicConductor with a lean per-message handler for single-subscriber partitions.

The stock handler takes an ``asyncio.Lock`` per message, acquires flow control, asks the
producer buffer whether to wait, and handles fan-out to many channels. When a partition
feeds exactly one channel, flow is open, the producer buffer is not over its limit and the
channel's queue has room, this handler does only what delivery needs (refcount, decode,
put with the same back-pressure callbacks); in every other case it calls the stock handler.
"""

from __future__ import annotations

from typing import Any, MutableSet

from faust.exceptions import KeyDecodeError, ValueDecodeError
from faust.transport.conductor import Conductor
from faust.types import TP, Message


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

        return on_message
