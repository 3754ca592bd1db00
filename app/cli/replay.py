"""``orderstats replay``: reposition the consumer group on the orders topic, optionally
rebuilding the derived state from that point.

Two modes. *Reposition* keeps the state: the offset fence makes re-reading idempotent, so
replaying already-counted events never double counts (useful after an outage of a
downstream, or to re-emit dead letters). *Rebuild* (``--rebuild``) starts a new state epoch
(app/kafka/epoch.py): fresh changelogs and local tables, the new group positioned at the target, the
statistics recomputed from there; the old epoch's changelog topics are deleted.

Either way the group must have no running members: Kafka refuses offset commits from
outside a live group, so the command checks first and changes nothing if workers run. All
partitions are committed in one request, so the group is never left half reset.

*Rebuild while serving* (``--rebuild --shadow``) needs no stop: the next epoch is built
beside the current one by ``orderstats worker --shadow`` and switched to in one step
(app/cli/shadow.py).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import faust
from faust.cli import option

from app.cli.errors import exit_on_kafka_error
from app.cli.progress import progress_to
from app.kafka.clients import Connection
from app.cli.shadow import ShadowError, begin_shadow
from app.cli.shadow import cancel_shadow as cancel_shadow_
from app.cli.shadow import refuse_if_pending, wait_and_switch
from app.kafka.control import read_control
from app.kafka.epoch import group_id, read_epoch, write_epoch
from app.kafka.offsets import (OffsetsError, active_members, commit_offsets,
                               committed_offsets, log_bounds, offsets_for_time)
from app.kafka.topics import delete_topics
from app.settings import Settings
from app.timefmt import format_iso_ms, parse_iso_ms
from tables.schema import TABLE_NAMES, changelog_topic


class ReplayError(ValueError):
    """Bad arguments or a state that forbids the replay; the message says which."""


_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration_ms(text: str) -> int:
    """ISO-8601 durations of days, hours, minutes, seconds: ``PT1H``, ``P1DT30M``, ``PT90S``."""
    m = _DURATION.match(text.strip().upper())
    if not m or not any(m.groups()) or text.upper().endswith("T"):
        raise ReplayError(f"--by-duration {text!r} is not an ISO-8601 duration like PT1H, "
                          "PT15M or P1DT12H")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    return int(((days * 24 + hours) * 60 + minutes) * 60_000 + seconds * 1000)


def parse_offset(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+):(\d+)", text.strip())
    if not m:
        raise ReplayError(f"--to-offset {text!r} must be PARTITION:OFFSET, e.g. 3:1500")
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True)
class Target:
    """Where to move: exactly one kind, with its argument."""

    kind: str  # earliest | latest | datetime | duration | offsets
    epoch_ms: int = 0
    offsets: tuple[tuple[int, int], ...] = ()

    @classmethod
    def from_options(cls, to_earliest: bool, to_latest: bool, to_datetime: str,
                     by_duration: str, to_offset: tuple[str, ...], now_ms: int) -> "Target":
        chosen = [name for name, on in (("--to-earliest", to_earliest),
                                        ("--to-latest", to_latest),
                                        ("--to-datetime", bool(to_datetime)),
                                        ("--by-duration", bool(by_duration)),
                                        ("--to-offset", bool(to_offset))) if on]
        if len(chosen) != 1:
            raise ReplayError("choose exactly one target: --to-earliest, --to-latest, "
                              "--to-datetime ISO, --by-duration PT1H or --to-offset P:O"
                              + (f" (got {', '.join(chosen)})" if chosen else ""))
        if to_earliest:
            return cls("earliest")
        if to_latest:
            return cls("latest")
        if to_datetime:
            try:
                return cls("datetime", epoch_ms=parse_iso_ms(to_datetime))
            except ValueError as exc:
                raise ReplayError(f"--to-datetime: {exc}") from None
        if by_duration:
            return cls("datetime", epoch_ms=now_ms - parse_duration_ms(by_duration))
        pairs = tuple(parse_offset(t) for t in to_offset)
        if len({p for p, _ in pairs}) != len(pairs):
            raise ReplayError("--to-offset names a partition twice")
        return cls("offsets", offsets=pairs)


def plan(target: Target, bounds: dict[int, tuple[int, int]],
         committed: dict[int, int | None], by_time: dict[int, int] | None = None) -> dict[int, int]:
    """The new committed offset of every partition (unnamed ones keep theirs)."""
    if target.kind == "earliest":
        return {p: lo for p, (lo, _hi) in bounds.items()}
    if target.kind == "latest":
        return {p: hi for p, (_lo, hi) in bounds.items()}
    if target.kind == "datetime":
        assert by_time is not None
        return dict(by_time)
    out = {p: (c if c is not None else bounds[p][0]) for p, c in committed.items()}
    for partition, offset in target.offsets:
        if partition not in bounds:
            raise ReplayError(f"partition {partition} does not exist (the topic has "
                              f"{len(bounds)}: 0..{len(bounds) - 1})")
        lo, hi = bounds[partition]
        if not lo <= offset <= hi:
            raise ReplayError(f"offset {offset} is outside partition {partition}'s log "
                              f"[{lo}, {hi}]")
        out[partition] = offset
    return out


async def run_replay(settings: Settings, target: Target, rebuild: bool, dry_run: bool,
                     out: TextIO = sys.stdout, shadow: bool = False) -> dict[int, int]:
    """Plan the new offsets, print them, and (unless a dry run) commit them; with
    ``shadow``, for the next epoch's group while the current one keeps running."""
    broker, app_id, topic = Connection.of(settings), settings.app_id, settings.orders_topic
    state = await read_control(broker, app_id)
    if not dry_run:
        refuse_if_pending(state)
    epoch, next_epoch = state.epoch, state.next_epoch
    group = group_id(app_id, epoch)
    if shadow and not dry_run:
        building = await active_members(broker, group_id(app_id, next_epoch))
        if building:
            raise ReplayError(f"{building} consumer(s) are already members of group "
                              f"{group_id(app_id, next_epoch)!r}; stop them first. "
                              "Nothing was changed.")
    members = 0 if shadow else await active_members(broker, group)
    if members and not dry_run:
        raise ReplayError(f"{members} worker(s) of group {group!r} are running; stop them "
                          "first (Kafka does not let a running group be repositioned from "
                          "outside). Nothing was changed.")
    bounds = await log_bounds(broker, topic)
    committed = await committed_offsets(broker, group, topic)
    by_time = (await offsets_for_time(broker, topic, target.epoch_ms)
               if target.kind == "datetime" else None)
    new = plan(target, bounds, committed, by_time)
    new_group = group_id(app_id, next_epoch) if rebuild else group
    print(f"{'planned' if dry_run else 'replay'}: topic {topic}, group {group}"
          + (f" -> {'shadow ' if shadow else ''}rebuild as epoch {next_epoch} "
             f"(group {new_group})" if rebuild else
             " (state kept: the offset fence skips what was already counted)"), file=out)
    if target.kind == "datetime":
        print(f"  target time {format_iso_ms(target.epoch_ms)} (record timestamps)", file=out)
    print(f"  {'partition':>9} {'committed':>10} {'new':>10} {'log end':>10} {'to read':>10}",
          file=out)
    for p in sorted(new):
        cur = committed.get(p)
        print(f"  {p:>9} {'-' if cur is None else cur:>10} {new[p]:>10} {bounds[p][1]:>10} "
              f"{bounds[p][1] - new[p]:>10}", file=out)
    if dry_run:
        print("  dry run: nothing changed", file=out)
        return new
    if shadow:
        await begin_shadow(broker, settings, state, new, out)
        return new
    await commit_offsets(broker, new_group, topic, new)
    if rebuild:
        await write_epoch(broker, app_id, next_epoch)
        stale = [changelog_topic(group, t) for t in TABLE_NAMES]
        deleted = await delete_topics(broker, stale + [f"{group}-__assignor-__leader"])
        local = Path(settings.data_dir) / app_id / f"v{epoch}"
        removed = local.exists()
        shutil.rmtree(local, ignore_errors=True)
        print(f"  epoch {next_epoch} is current; deleted {len(deleted)} topics of epoch "
              f"{epoch}" + (f" and {local}" if removed else "") + ". Workers on other "
              f"hosts ignore their epoch-{epoch} state; DATA_DIR/{app_id}/v{epoch} can be "
              "deleted there.", file=out)
    print("  done: start the workers; `orderstats replay --watch` shows the catch-up",
          file=out)
    return new


async def watch_progress(settings: Settings, out: TextIO = sys.stdout,
                         timeout_s: float = 3600) -> bool:
    """Per-partition catch-up of the current group against the log end, until lag is 0."""
    broker, topic = Connection.of(settings), settings.orders_topic
    group = group_id(settings.app_id, await read_epoch(broker, settings.app_id))
    deadline = time.monotonic() + timeout_s
    first: int | None = None
    with progress_to(None, f"catching up ({group})") as update:
        while time.monotonic() < deadline:
            bounds = await log_bounds(broker, topic)
            committed = await committed_offsets(broker, group, topic)
            lag = {p: hi - (committed.get(p) if committed.get(p) is not None else lo)
                   for p, (lo, hi) in bounds.items()}
            first = sum(lag.values()) if first is None else first
            update(first - sum(lag.values()))
            print(f"{time.strftime('%H:%M:%S')} group {group}: lag " + " ".join(
                f"p{p}={lag[p]}" for p in sorted(lag)) + f"  total {sum(lag.values()):,}",
                file=out, flush=True)
            if not any(lag.values()):
                return True
            await asyncio.sleep(2)
    return False


def register(app: faust.App, settings: Settings) -> None:
    @app.command(
        option("--to-earliest", is_flag=True, help="From the start of the log."),
        option("--to-latest", is_flag=True, help="Skip to the end of the log."),
        option("--to-datetime", default="", help="From the first record at/after this "
               "ISO-8601 time (record timestamps)."),
        option("--by-duration", default="", help="From this long ago, e.g. PT1H."),
        option("--to-offset", multiple=True, help="PARTITION:OFFSET (repeatable); other "
               "partitions keep their position."),
        option("--rebuild", is_flag=True, help="Discard the derived state and recompute "
               "it from the target (new state epoch)."),
        option("--dry-run", is_flag=True, help="Print the planned offsets, change nothing."),
        option("--watch", is_flag=True, help="Only show the group's per-partition catch-up."),
        option("--shadow", is_flag=True, help="With --rebuild: build the new epoch while the "
               "current one serves (workers started with `orderstats worker --shadow`), "
               "then switch in one step."),
        option("--no-wait", is_flag=True, help="With --shadow: return once the shadow is "
               "recorded; `--switch` finishes later."),
        option("--switch", is_flag=True, help="Wait until the pending shadow epoch has caught "
               "up, make it current, retire the old epoch."),
        option("--cancel-shadow", is_flag=True, help="Drop the pending shadow epoch."),
    )
    @exit_on_kafka_error(lambda: Connection.of(settings))
    async def replay(self: object, to_earliest: bool, to_latest: bool,
                     to_datetime: str, by_duration: str, to_offset: tuple[str, ...],
                     rebuild: bool, dry_run: bool, watch: bool, shadow: bool,
                     no_wait: bool, switch: bool, cancel_shadow: bool) -> None:
        """Reposition the group on the orders topic (see README, "Replay" and "Rebuild
        while serving")."""
        try:
            if watch:
                await watch_progress(settings)
                return
            if switch or cancel_shadow:
                if switch and cancel_shadow:
                    raise ReplayError("choose one of --switch and --cancel-shadow")
                if to_earliest or to_latest or to_datetime or by_duration or to_offset \
                        or rebuild or shadow:
                    raise ReplayError("--switch and --cancel-shadow take no target and no "
                                      "--rebuild/--shadow")
                await (wait_and_switch(settings) if switch else cancel_shadow_(settings))
                return
            if (shadow and not rebuild) or (no_wait and not shadow):
                raise ReplayError("--shadow goes with --rebuild, --no-wait with --shadow")
            target = Target.from_options(to_earliest, to_latest, to_datetime, by_duration,
                                         to_offset, int(time.time() * 1000))
            await run_replay(settings, target, rebuild, dry_run, shadow=shadow)
            if shadow and not dry_run and not no_wait:
                await wait_and_switch(settings)
        except (ReplayError, OffsetsError, ShadowError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
