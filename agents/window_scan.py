"""A partition's window scan, run beside its batches instead of before them.

When a partition is loaded (a restart, a rebalance, a failover) the closer reads every window
of it once (agents/closer.py ``WindowCloser.scan``). With a day of minutes for 100,000 stores
that is about 18 million windows per partition and a minute of CPU each; run before the
partition's first batch, a restarted worker counted nothing for eight minutes and Faust
reported its streams as stuck. So the scan runs in a thread of its own while the partition's
batches go on: it reads a RocksDB iterator, a consistent view of the windows as they were
when it started; the batches meanwhile count orders, open windows and re-close windows that
late orders change, but close nothing new until the scan's findings are merged
(``PartitionState.windows_indexed``). What either found is then the union, and nothing is
lost: a window opened after the scan began is indexed by its batch, one that was open before
by the scan.

One scan runs at a time in the process: each holds the GIL for most of its time, and the
event loop (heartbeats, batches, the web view) must keep its share.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

_ONE_AT_A_TIME = threading.Lock()


class WindowScan:
    """``scan(stop)`` run in a daemon thread; :attr:`done` resolves to its result (None if
    it was stopped)."""

    def __init__(self, scan: Callable[[threading.Event], Any], name: str) -> None:
        self.stop = threading.Event()
        loop = asyncio.get_running_loop()
        self.done: asyncio.Future = loop.create_future()

        def deliver(outcome: Any, failed: bool) -> None:
            if self.done.done():
                return
            if failed:
                self.done.set_exception(outcome)
            else:
                self.done.set_result(outcome)

        def run() -> None:
            outcome: Any = None
            failed = False
            # Waiting for another partition's scan, a stop still ends this one at once.
            while not _ONE_AT_A_TIME.acquire(timeout=0.05):
                if self.stop.is_set():
                    break
            else:
                try:
                    if not self.stop.is_set():
                        outcome = scan(self.stop)
                except Exception as exc:  # handed to the loop, which logs it
                    outcome, failed = exc, True
                finally:
                    _ONE_AT_A_TIME.release()
            try:
                loop.call_soon_threadsafe(deliver, outcome, failed)
            except RuntimeError:
                pass  # the loop is closed: the worker is exiting

        # A daemon: a worker told to stop does not wait for a scan to finish.
        threading.Thread(target=run, name=name, daemon=True).start()

    async def stopped(self) -> None:
        """Stop the scan and wait until its thread no longer reads the partition."""
        self.stop.set()
        await asyncio.wait([self.done])
