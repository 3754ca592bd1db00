"""``orderstats`` without its runtime tuning: the sensitivity row "orderstats-plain".

Run as ``python -m bench.untuned_worker worker ...`` with ``ORDERSTATS_EVENT_LOOP=asyncio``
(the worker's own switch for uvloop). The GC settings have no switch of their own, so the
worker's start-up tuning (app.worker's ``tune_runtime``) runs as shipped and its GC part is
then undone: the objects it froze go back to the collector and the thresholds to
CPython's defaults. The Monitor sensor and log level stay as tuned: they are not the GC.
"""

from __future__ import annotations

import gc
from typing import Any

import app.worker
from app.cli.main import main

DEFAULT_THRESHOLD = gc.get_threshold()
_tuned = app.worker.tune_runtime


def tune_without_gc(faust_app: Any) -> None:
    _tuned(faust_app)
    gc.unfreeze()
    gc.set_threshold(*DEFAULT_THRESHOLD)


app.worker.tune_runtime = tune_without_gc  # wire_lifecycle looks it up when the task runs

if __name__ == "__main__":
    main()
