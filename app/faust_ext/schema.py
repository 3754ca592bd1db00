"""A Faust Schema that builds events from raw-bytes topics without the codec registry."""

from __future__ import annotations

from typing import Any

import faust
from faust.types import AppT, EventT, Message


class RawBytesSchema(faust.Schema):
    """For raw key and value (our orders topic), an Event is just the message's bytes."""

    def compile(self, app: AppT, **kwargs: Any) -> Any:
        """OVERRIDES faust.Schema.compile (public; faust-streaming 0.15.3)."""
        raw = (self.key_serializer == "raw" and self.value_serializer == "raw"
               and self.key_type in (None, bytes) and self.value_type in (None, bytes))
        if not raw:
            return super().compile(app, **kwargs)
        event_cls = app.conf.Event

        async def decode(message: Message, *, propagate: bool = False) -> EventT:
            return event_cls(app, message.key, message.value, message.headers, message)

        return decode
