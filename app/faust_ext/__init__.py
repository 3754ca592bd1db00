"""Every reach into private faust, mode or aiokafka names, quarantined and version-guarded.

Faust's per-event consume path, made cheap through Faust's own extension points.

Measured on 2 cores, a stock Faust agent that only counts its events tops out near 12k
events/s: every message pays for a task race in the consumer (``wait_first`` per message)
and for the stream iterator (``sleep(0)``, a queue get, processors and sensor hooks per
event). Both have to go before anything else shows. Each piece here replaces one of them
through a documented plug-in point and keeps Faust's agents, acks and offset commits:

* :mod:`app.faust_ext.consumer`: the aiokafka Consumer (via a Transport, selected by the
  broker URL scheme) races a fetched *batch* against a rebalance, not each message.
* :mod:`app.faust_ext.stream`: the ``Stream`` setting; ``take_events`` drains the channel's
  queue in bulk and acks every event after the batch body, as the stock one does.
* :mod:`app.faust_ext.conductor` (the transport's ``Conductor``) and :mod:`app.faust_ext.schema`
  (``Schema`` setting): deliver a raw-bytes message to its one stream without the lock,
  flow-control and codec-registry work the general case needs.
* :func:`tune_runtime`: drops Faust's in-memory Monitor sensor (we publish our own metrics),
  raises the GC thresholds, which the object churn of a fast stream otherwise trips
  thousands of times a second, and stops building DEBUG log records nobody prints.

* :mod:`app.faust_ext.producer`: the transport's ``Producer`` with idempotence on, so a
  retried send after a lost acknowledgement is not written twice (dead letters exactly once).
* :mod:`app.faust_ext.rocksdb_memory`: Faust's RocksDB store with one memory budget per
  worker (a store URL scheme).
* :mod:`app.faust_ext.web_stream`: a streamed answer (Server-Sent Events) from a Faust view;
  no private name, but it relies on the aiohttp driver handing views aiohttp's own request.

Each override names, in its docstring, the stock method it replaces and marks the private
names it reads (``PRIVATE``). They are pinned to faust-streaming 0.15.3 and aiokafka 0.14.0:
:mod:`app.faust_ext.guard` refuses any other release at start-up, and the integration tests
exercise every override end to end.
"""

from __future__ import annotations

import gc
import logging

import faust
from faust.utils.terminal import SpinnerHandler

from app.faust_ext.conductor import SingleChannelConductor
from app.faust_ext.consumer import SCHEME, BatchDrainTransport
from app.faust_ext.guard import check_versions
from app.faust_ext.rocksdb_memory import STORE_URL
from app.faust_ext.schema import RawBytesSchema
from app.faust_ext.stream import BatchStream

__all__ = ["SCHEME", "STORE_URL", "BatchDrainTransport", "BatchStream", "RawBytesSchema",
           "SingleChannelConductor", "check_versions", "tune_runtime"]


def tune_runtime(app: faust.App) -> None:
    """Call once the worker runs: lean sensors and GC settings for the hot path."""
    monitor = app.monitor
    if monitor in app.sensors:  # public: SensorDelegate.remove
        app.sensors.remove(monitor)
    gc.collect()
    gc.freeze()  # startup objects (modules, app) are never garbage: stop rescanning them
    gc.set_threshold(100_000, 50, 100)
    # mode leaves the root logger at DEBUG and filters in its handlers, so every
    # logger.debug() on the hot path (aiokafka, faust) still builds a LogRecord: with
    # ``-l warn`` Faust's start-up spinner handler (DEBUG, it only turns the spinner) kept
    # the root at DEBUG, and aiokafka's per-send debug line alone took 7% of a worker's time
    # (py-spy, bench/results/profile-after-20261123.txt). Only a handler that prints DEBUG
    # keeps it.
    if not any(h.level == logging.DEBUG and not isinstance(h, SpinnerHandler)
               for h in logging.root.handlers):
        logging.root.setLevel(max(logging.root.level, logging.INFO))
