"""A worker's eye on the control topic: it says which epoch it serves, follows the rebuild
being built beside it, and retires when a newer epoch becomes current.

Every worker runs one ``EpochWatch`` (a Faust task). It registers its web URL with its
epoch (``worker:<url>``), then tails the control topic (app/kafka/control.py) about once a
second. When the current epoch moves past its own (``orderstats replay --switch``), it
*retires*: for ``ORDERSTATS_RETIRE_AFTER_S`` it forwards every stats request to a worker of
the current epoch (app/web/forward.py), so no client sees its older figures again, then it
stops cleanly (exit 0) and deletes its local state of the old epoch. Restarted, a worker
reads the new epoch and joins it. ``status()`` is the ``rebuild`` part of ``/api/cluster``.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Callable

import faust

from app.faust_ext.web_middleware import append_middleware
from app.kafka.catchup import Lag, measure
from app.kafka.clients import Connection
from app.kafka.control import ControlState, ControlTail, worker_record, write_control
from app.kafka.epoch import group_id
from app.settings import Settings
from app.web.cluster import Cluster
from app.web.forward import Forwarder
from tables.schema import repartition_topic

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 3.0  # /api/cluster asks the broker for the rebuild's lag at most this often
CAUGHT_UP_LOOK_S = 15.0  # "caught up" compares with a look at most this old


class EpochWatch:
    """The control topic as this worker sees it, and its own retirement."""

    def __init__(self, settings: Settings, conn: Connection, epoch: int,
                 self_url: Callable[[], str], appdir: Path) -> None:
        self.settings = settings
        self.conn = conn
        self.epoch = epoch
        self.self_url = self_url
        self.appdir = appdir
        self.tail = ControlTail(conn, settings.app_id)
        self.retiring_since: float | None = None  # time.monotonic() of the switch seen
        self._looks: list[tuple[float, Lag]] = []  # the rebuild's lag, newest last
        self._progress_lock = asyncio.Lock()

    @property
    def state(self) -> ControlState:
        return self.tail.state

    @property
    def retiring(self) -> bool:
        return self.retiring_since is not None

    def forward_targets(self) -> list[str]:
        """Workers of the current epoch (other than this one) that registered."""
        me = self.self_url()
        return [url for url in self.state.workers_of(self.state.epoch) if url != me]

    async def run(self) -> None:
        """Register, then follow the control topic until this worker retires."""
        registered = False
        while True:
            try:
                if not registered:
                    await write_control(self.conn, self.settings.app_id,
                                        worker_record(self.self_url(), self.epoch))
                    registered = True
                state = await self.tail.poll(timeout_ms=1000)
            except Exception as exc:  # the broker away: /ready says so; keep trying
                log.warning("reading the control topic failed (%s); retrying", exc)
                await asyncio.sleep(1)
                continue
            if state.epoch > self.epoch and self.retiring_since is None:
                self.retiring_since = time.monotonic()
                log.warning("epoch %d is current: this epoch-%d worker now forwards every "
                            "stats request to epoch-%d workers %s for %.0f s, then stops",
                            state.epoch, self.epoch, state.epoch, self.forward_targets(),
                            self.settings.retire_after_s)
            if self.retiring_since is not None and \
                    time.monotonic() - self.retiring_since >= self.settings.retire_after_s:
                self.stop()
                return
            if state.shadow == self.epoch > state.epoch and state.shadow_state == "cancelled":
                log.warning("the shadow rebuild into epoch %d was cancelled", self.epoch)
                self.stop()
                return

    def stop(self) -> None:
        """Stop this worker as a service manager would (SIGTERM: a clean stop, exit 0),
        then delete its local state of the old epoch."""
        log.warning("epoch %d is current; this epoch-%d worker stops now (exit 0) and deletes "
                    "%s. Start it again (without --shadow) to join epoch %d.",
                    self.state.epoch, self.epoch, self.appdir, self.state.epoch)
        atexit.register(shutil.rmtree, self.appdir, ignore_errors=True)
        os.kill(os.getpid(), signal.SIGTERM)

    async def unregister(self) -> None:
        try:
            await asyncio.wait_for(write_control(self.conn, self.settings.app_id,
                                                 worker_record(self.self_url(), None)), 5)
        except Exception:  # stopping anyway; forwarders skip a worker that does not answer
            log.info("could not unregister %s from the control topic", self.self_url())
        await self.tail.close()

    async def status(self) -> dict[str, Any]:
        """The ``rebuild`` part of /api/cluster: epochs, the shadow's progress, retirement."""
        state = self.state
        out: dict[str, Any] = {
            "epoch": self.epoch, "current_epoch": state.epoch, "shadow": state.pending,
            "retiring": self.retiring,
            "workers": {url: e for url, e in sorted(state.workers.items())}}
        if self.retiring_since is not None:
            out["stops_in_s"] = round(max(0.0, self.settings.retire_after_s
                                          - (time.monotonic() - self.retiring_since)), 1)
        if state.pending is not None:
            out["progress"] = await self.progress(state.pending)
        return out

    async def progress(self, shadow: int) -> dict[str, Any]:
        """The shadow group's lag per partition (the broker asked at most every few s)."""
        async with self._progress_lock:
            now = time.monotonic()
            group = group_id(self.settings.app_id, shadow)
            fresh = [(t, lag) for t, lag in self._looks if lag.group == group]
            if not fresh or now - fresh[-1][0] >= PROGRESS_EVERY_S:
                try:
                    lag = await measure(self.conn, group, [self.settings.orders_topic,
                                                           repartition_topic(group)])
                except Exception as exc:
                    return {"group": group, "error": f"{type(exc).__name__}: {exc}"}
                fresh = (fresh + [(now, lag)])[-2:]
                self._looks = fresh
            before = fresh[-2][1] if len(fresh) > 1 and \
                fresh[-1][0] - fresh[-2][0] <= CAUGHT_UP_LOOK_S else None
            return fresh[-1][1].as_json(before)


def watch_epochs(app: faust.App, settings: Settings, conn: Connection, epoch: int,
                 cluster: Cluster) -> EpochWatch:
    """Wire an EpochWatch into a worker: its task, the forwarding of a retiring worker,
    its unregistration at shutdown."""
    watch = EpochWatch(settings, conn, epoch, cluster.self_url, Path(app.conf.appdir))

    @app.task
    async def follow_control_topic() -> None:
        await watch.run()

    @app.on_before_shutdown.connect
    async def unregister(app: faust.App, **kwargs: object) -> None:
        await watch.unregister()

    append_middleware(app, Forwarder(watch, cluster).middleware())
    return watch
