"""Faust's per-event consume path, made cheap through Faust's own extension points.

Measured on 2 cores, a stock Faust agent that only counts its events tops out near 12k
events/s: every message pays for a task race in the consumer (``wait_first`` per message)
and for the stream iterator (``sleep(0)``, a queue get, processors and sensor hooks per
event). Both have to go before anything else shows. Each piece here replaces one of them
through a documented plug-in point and keeps Faust's agents, acks and offset commits:

* :mod:`app.fastpath.consumer`: the aiokafka Consumer (via a Transport, selected by the
  broker URL scheme) races a fetched *batch* against a rebalance, not each message.
* :mod:`app.fastpath.stream`: the ``Stream`` setting; ``take_events`` drains the channel's
  queue in bulk and acks every event after the batch body, as the stock one does.
* :mod:`app.fastpath.conductor` (the transport's ``Conductor``) and :mod:`app.fastpath.schema`
  (``Schema`` setting): deliver a raw-bytes message to its one stream without the lock,
  flow-control and codec-registry work the general case needs.
* :func:`tune_runtime`: drops Faust's in-memory Monitor sensor (we publish our own metrics),
  raises the GC thresholds, which the object churn of a fast stream otherwise trips
  thousands of times a second, and stops building DEBUG log records nobody prints.

They are pinned to faust-streaming 0.15.3 (they read a few private attributes); the tests in
tests/integration exercise them end to end, so an upgrade that breaks them fails loudly.
"""

from __future__ import annotations

import gc
import logging

import faust

from app.fastpath.conductor import SingleChannelConductor
from app.fastpath.consumer import SCHEME, BatchDrainTransport
from app.fastpath.schema import RawBytesSchema
from app.fastpath.stream import BatchStream

__all__ = ["SCHEME", "BatchDrainTransport", "BatchStream", "RawBytesSchema",
           "SingleChannelConductor", "tune_runtime"]


def tune_runtime(app: faust.App) -> None:
    """Call once the worker runs: lean sensors and GC settings for the hot path."""
    monitor = app.monitor
    if monitor in app.sensors:
        app.sensors.remove(monitor)
    gc.collect()
    gc.freeze()  # startup objects (modules, app) are never garbage: stop rescanning them
    gc.set_threshold(100_000, 50, 100)
    # mode leaves the root logger at DEBUG and filters in its handlers, so every
    # logger.debug() on the hot path (aiokafka, faust) still builds a LogRecord.
    if not any(h.level == logging.DEBUG for h in logging.root.handlers):
        logging.root.setLevel(max(logging.root.level, logging.INFO))
