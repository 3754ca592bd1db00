"""tune_runtime stops DEBUG log records nobody prints, even under Faust's spinner handler."""

from __future__ import annotations

import gc
import logging
from types import SimpleNamespace

from faust.utils.terminal import SpinnerHandler

from app.faust_ext import tune_runtime


def _tune_with(handler: logging.Handler) -> int:
    root = logging.root
    saved_level, saved_handlers, saved_gc = root.level, list(root.handlers), gc.get_threshold()
    try:
        root.handlers = [handler]
        root.setLevel(logging.DEBUG)
        tune_runtime(SimpleNamespace(monitor=object(), sensors=[]))
        return root.level
    finally:
        root.handlers, _ = saved_handlers, root.setLevel(saved_level)
        gc.set_threshold(*saved_gc)
        gc.unfreeze()


def test_the_spinner_handler_does_not_keep_the_root_logger_at_debug():
    assert _tune_with(SpinnerHandler(None, level=logging.DEBUG)) == logging.INFO


def test_a_handler_that_prints_debug_keeps_it():
    printing = logging.StreamHandler()
    printing.setLevel(logging.DEBUG)  # what `-l debug` sets up
    assert _tune_with(printing) == logging.DEBUG
