"""Progress bars for long commands (rich), on stderr, only when stdout is a terminal."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Iterator

@contextmanager
def progress_bar(total: int | None, what: str) -> Iterator[Any]:
    """A rich progress bar on stderr while stdout is a terminal; silent otherwise."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True,
                  disable=not sys.stdout.isatty()) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)  # n more done (bar.update for absolute)


@contextmanager
def progress_to(total: int | None, what: str) -> Iterator[Any]:
    """Like :func:`progress_bar`, but the callback takes the absolute count done."""
    done = [0]
    with progress_bar(total, what) as advance:
        def to(n: int) -> None:
            advance(max(0, n - done[0]))
            done[0] = max(done[0], n)
        yield to
