"""Rebuild while serving: a new state epoch built beside the current one, then one switch.

``orderstats replay --rebuild --shadow TARGET`` positions the next epoch's consumer group at
TARGET and records the shadow in the control topic (app/kafka/control.py); workers started
with ``orderstats worker --shadow`` build it while the current epoch's workers keep
answering. ``wait_and_switch`` (also ``orderstats replay --switch``) waits until the new
group is within one look of the live end of the orders topic (and its repartition topic)
and has a ready worker, then writes ONE record that makes it current. The old epoch's
workers see it within a second, forward every stats request to the new epoch's workers for
``ORDERSTATS_RETIRE_AFTER_S``, stop and delete their local state (app/epoch_watch.py);
then the old epoch's topics are deleted here.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

import aiohttp

from app.kafka.catchup import Lag, measure
from app.kafka.clients import Connection
from app.kafka.control import (ControlState, epoch_record, read_control, shadow_record,
                               write_control)
from app.kafka.epoch import epoch_topics, group_id
from app.kafka.offsets import active_members, commit_offsets
from app.kafka.topics import delete_topics
from app.settings import Settings
from app.timefmt import format_iso_ms
from tables.schema import repartition_topic

POLL_S = 2.0


class ShadowError(ValueError):
    """A shadow rebuild cannot start, switch or be cancelled now; the message says why."""


def refuse_if_pending(state: ControlState) -> None:
    if state.pending is not None:
        raise ShadowError(f"a shadow rebuild into epoch {state.pending} is pending; finish it "
                          "with `orderstats replay --switch` or drop it with `orderstats "
                          "replay --cancel-shadow`. Nothing was changed.")


async def begin_shadow(conn: Connection, settings: Settings, state: ControlState,
                       offsets: dict[int, int], out: TextIO = sys.stdout) -> int:
    """Position the next epoch's group at ``offsets`` and record it as the pending shadow."""
    app_id = settings.app_id
    epoch, group = state.next_epoch, group_id(app_id, state.next_epoch)
    await delete_topics(conn, epoch_topics(app_id, epoch))  # never used: numbers are fresh
    await commit_offsets(conn, group, settings.orders_topic, offsets)
    await write_control(conn, app_id, shadow_record(
        epoch, "pending", group=group, previous=state.epoch,
        started=format_iso_ms(int(time.time() * 1000))))
    print(f"  shadow epoch {epoch} is pending (group {group}); epoch {state.epoch} keeps "
          "serving.\n  Start workers that build it, on this host or others (each with its "
          "own ORDERSTATS_WEB_PORT and ORDERSTATS_DATA_DIR):\n"
          "      orderstats worker --shadow\n"
          "  `orderstats replay --switch` switches once they have caught up (GET "
          "/api/cluster shows the progress under `rebuild`).", file=out, flush=True)
    return epoch


async def ready_urls(urls: list[str], headers: dict[str, str]) -> list[str]:
    """Those of ``urls`` whose /ready answers 200 now."""
    async def ready(session: aiohttp.ClientSession, url: str) -> bool:
        try:
            async with session.get(url + "/ready", headers=headers) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        answers = await asyncio.gather(*(ready(session, url) for url in urls))
    return [url for url, ok in zip(urls, answers) if ok]


def progress_line(epoch: int, lag: Lag, members: int, ready: int, caught_up: bool) -> str:
    per_topic: dict[str, int] = {}
    for (topic, _p), end in lag.ends.items():
        per_topic[topic] = per_topic.get(topic, 0) + lag.lag((topic, _p))
    topics = ", ".join(f"{t} {n:,}" for t, n in sorted(per_topic.items()))
    missing = f"; not created yet: {', '.join(lag.missing_topics)}" if lag.missing_topics else ""
    return (f"{time.strftime('%H:%M:%S')} shadow epoch {epoch} ({lag.group}): {members} "
            f"member(s), {ready} ready; lag {lag.total:,} ({topics}){missing}"
            + ("  caught up" if caught_up else ""))


async def wait_and_switch(settings: Settings, out: TextIO = sys.stdout,
                          timeout_s: float = 24 * 3600) -> int | None:
    """Wait for the pending shadow to catch up, switch to it, retire the old epoch.
    Without a pending shadow, finish the last switch's clean-up. The new epoch, or None."""
    conn, app_id = Connection.of(settings), settings.app_id
    state = await read_control(conn, app_id)
    shadow = state.pending
    if shadow is None:
        old = int(state.shadow_info.get("previous", 0)) if state.shadow == state.epoch else 0
        if not old:
            print(f"no shadow rebuild is pending (epoch {state.epoch} is current); nothing "
                  "to do", file=out)
            return None
        print(f"no shadow rebuild is pending; epoch {state.epoch} is current", file=out)
        await retire_old(conn, settings, old, out, wait_s=0)
        return None
    group = group_id(app_id, shadow)
    topics = [settings.orders_topic, repartition_topic(group)]
    headers = settings.access.peer_headers()
    deadline = time.monotonic() + timeout_s
    before: Lag | None = None
    while True:
        lag = await measure(conn, group, topics)
        members = await active_members(conn, group)
        state = await read_control(conn, app_id)
        if state.pending != shadow:
            raise ShadowError(f"the shadow rebuild into epoch {shadow} is no longer pending "
                              f"(epoch {state.epoch} is current); nothing was switched")
        ready = await ready_urls(state.workers_of(shadow), headers)
        caught_up = lag.passed(before) and members > 0 and bool(ready)
        print(progress_line(shadow, lag, members, len(ready), caught_up), file=out, flush=True)
        if caught_up:
            break
        if time.monotonic() > deadline:
            raise ShadowError(f"epoch {shadow} has not caught up within {timeout_s:.0f} s "
                              "(is an `orderstats worker --shadow` running?); run "
                              "`orderstats replay --switch` again to keep waiting")
        before = lag
        await asyncio.sleep(POLL_S)
    await write_control(conn, app_id, epoch_record(shadow))  # THE switch: one record
    print(f"switched at {format_iso_ms(int(time.time() * 1000))}: epoch {shadow} is current. "
          f"Epoch {state.epoch} workers forward to epoch {shadow} workers for their "
          "ORDERSTATS_RETIRE_AFTER_S, then stop and delete their local state; a restarted "
          f"worker joins epoch {shadow}.", file=out, flush=True)
    await retire_old(conn, settings, state.epoch, out,
                     wait_s=settings.retire_after_s + settings.session_timeout_s + 60)
    return shadow


async def retire_old(conn: Connection, settings: Settings, old: int, out: TextIO,
                     wait_s: float) -> bool:
    """Delete epoch ``old``'s topics once its group has no member (waiting up to wait_s)."""
    group = group_id(settings.app_id, old)
    deadline = time.monotonic() + wait_s
    while (members := await active_members(conn, group)) and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
    if members:
        print(f"  {members} worker(s) of epoch {old} still run; once they stopped, "
              f"`orderstats replay --switch` deletes epoch {old}'s topics", file=out)
        return False
    deleted = await delete_topics(conn, epoch_topics(settings.app_id, old))
    print(f"  epoch {old} retired: deleted {len(deleted)} topic(s)"
          + (f" ({', '.join(deleted)})" if deleted else ""), file=out, flush=True)
    return True


async def cancel_shadow(settings: Settings, out: TextIO = sys.stdout) -> int:
    """Drop the pending shadow: its workers stop, its topics are deleted once they did."""
    conn, app_id = Connection.of(settings), settings.app_id
    state = await read_control(conn, app_id)
    shadow = state.pending
    if shadow is None:
        raise ShadowError(f"no shadow rebuild is pending (epoch {state.epoch} is current)")
    await write_control(conn, app_id, shadow_record(shadow, "cancelled",
                                                    **{k: v for k, v in state.shadow_info.items()
                                                       if k not in ("epoch", "state")}))
    print(f"shadow epoch {shadow} cancelled; its workers stop; epoch {state.epoch} stays "
          "current", file=out, flush=True)
    await retire_old(conn, settings, shadow, out,
                     wait_s=settings.session_timeout_s + 30)
    return shadow
