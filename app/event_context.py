"""Acting as a Faust event outside the stream iterator, so batched table writes work.

Faust tables find the partition of a write (RocksDB DB and changelog partition) through the
current-event context variable, which the stream sets per event (faust-streaming #497).
Batched writes happen after the batch is pulled, where that variable is empty, so we set it
to an event of the partition being written. ``faust.streams._current_event`` is private: this
module is the only place that touches it, and tests/unit/test_event_context.py pins it.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Iterator

from faust import streams
from faust.types import EventT


@contextmanager
def acting_as(event: EventT) -> Iterator[None]:
    """Within the block, Faust sees ``event`` as the current event."""
    token = streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        streams._current_event.reset(token)
