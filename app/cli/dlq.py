"""``orderstats dlq stats|show|redrive``: look into the dead-letter topic, and send dead
letters back to the orders topic once the cause is fixed (README, "Dead letters").

* ``stats``: how many, by reason (numbers and quoted values folded, so one cause is one
  line), by source partition, first and last time.
* ``show``: the dead letters themselves, decoded as far as possible (JSON pretty-printed,
  other bytes escaped), with their headers.
* ``redrive``: re-validates each dead letter with the *current* settings (event mapping),
  produces the ones that now pass to the orders topic keyed and partitioned on the
  workers' direct path, with ``orderstats.redrive.*`` headers saying where they came from,
  and records each in the ledger topic ``APP_ID-dlq-redriven`` (app/kafka/dlq.py) once the
  broker acknowledged it. Dead letters that are still invalid are skipped and counted; so
  are those the ledger says were redriven before: running it twice sends nothing twice.
"""

from __future__ import annotations

import io
import re
import sys
import time
from collections import Counter
from typing import Any, TextIO

import click
import faust
import orjson
from faust.cli import argument, option

from agents.routing import KeyRouting
from app.cli.progress import progress_bar
from app.cli.errors import exit_on_kafka_error
from app.cli.replay import ReplayError, parse_duration_ms
from app.kafka.clients import Connection, producer
from app.kafka.dlq import (DeadLetter, count_range, ensure_ledger, read_ledger, read_topic,
                           record_redriven)
from app.kafka.topics import partition_ids
from app.order import InvalidOrder, decode_order
from app.settings import Settings
from app.timefmt import format_iso_ms, parse_iso_ms

ACTIONS = ("stats", "show", "redrive")
MAX_FUTURE_MS = 7 * 86400 * 1000  # as the workers
CHUNK = 500  # redriven orders in flight before their acks and ledger records
SHOW_BYTES = 4000


class DlqError(ValueError):
    """Bad arguments or a state that forbids the command; the message says which."""


def reason_kind(reason: str) -> str:
    """A reason with its particulars folded: quoted values -> '…', numbers -> N."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", reason)
    return re.sub(r"(?<![\w-])\d+(?:\.\d+)?(?!\w)", "N", text)


def parse_since(text: str, now_ms: int) -> int:
    """An ISO-8601 time with offset, or a duration back from now (PT1H, P2D)."""
    try:
        return parse_iso_ms(text)
    except (ValueError, TypeError):
        pass
    try:
        return now_ms - parse_duration_ms(text)
    except ReplayError:
        raise DlqError(f"--since {text!r} is neither an ISO-8601 time with offset "
                       "(2026-11-23T00:00:00Z) nor a duration (PT1H)") from None


def escape(data: bytes | None, limit: int = SHOW_BYTES) -> str:
    """Bytes as readable text: UTF-8 where it is, \\xNN for the rest and for control bytes."""
    if data is None:
        return "(null)"
    cut = data[:limit]
    text = cut.decode("utf-8", "backslashreplace")
    text = "".join(c if c.isprintable() or c == "\n" else f"\\x{ord(c):02x}" for c in text)
    return text + (f"… ({len(data)} bytes)" if len(data) > limit else "")


def render_value(value: bytes | None) -> str:
    try:
        doc = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return escape(value)
    if doc is None and value is None:
        return "(null)"
    text = orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()
    return text if len(text) <= SHOW_BYTES else text[:SHOW_BYTES] + "…"


async def scan(settings: Settings, since_ms: int | None, what: str
               ) -> tuple[list[DeadLetter], int]:
    """Every dead letter (from ``since_ms`` on); and how many offsets were read."""
    conn = Connection.of(settings)
    ranges = await count_range(conn, settings.dlq_topic, since_ms)
    total = sum(end - start for start, end in ranges.values())
    letters: list[DeadLetter] = []
    with progress_bar(total, what) as advance:
        async for dl in read_topic(conn, settings.dlq_topic, ranges, advance):
            letters.append(dl)
    return letters, total


def matches(dl: DeadLetter, reason: str) -> bool:
    return not reason or reason.lower() in dl.reason.lower()


async def stats(settings: Settings, since_ms: int | None, reason: str,
                out: TextIO = sys.stdout) -> dict[str, Any]:
    letters, _ = await scan(settings, since_ms, "reading dead letters")
    letters = [dl for dl in letters if matches(dl, reason)]
    redriven = await read_ledger(Connection.of(settings), settings.app_id)
    by_reason = Counter(reason_kind(dl.reason) for dl in letters)
    by_partition = Counter(dl.source_partition for dl in letters)
    done = sum(dl.origin in redriven for dl in letters)
    times = [dl.timestamp_ms for dl in letters]
    summary = {"topic": settings.dlq_topic, "dead_letters": len(letters), "redriven": done,
               "first": format_iso_ms(min(times)) if times else None,
               "last": format_iso_ms(max(times)) if times else None,
               "by_reason": dict(by_reason.most_common()),
               "by_source_partition": dict(sorted(by_partition.items(),
                                                  key=lambda kv: _num(kv[0])))}
    print(f"{settings.dlq_topic}: {len(letters):,} dead letters"
          + (f" matching {reason!r}" if reason else "")
          + (f", {summary['first']} .. {summary['last']}" if times else "")
          + f"; {done:,} already redriven", file=out)
    if letters:
        print("\nby reason (numbers and quoted values folded):", file=out)
        for kind, n in by_reason.most_common():
            print(f"  {n:>9,}  {kind}", file=out)
        print("\nby source partition:", file=out)
        for part, n in summary["by_source_partition"].items():
            print(f"  {n:>9,}  partition {part}", file=out)
    return summary


def _num(text: str) -> tuple[int, str]:
    return (int(text), "") if text.isdigit() else (1 << 62, text)


async def show(settings: Settings, since_ms: int | None, reason: str, limit: int,
               out: TextIO = sys.stdout) -> int:
    letters, _ = await scan(settings, since_ms, "reading dead letters")
    shown = 0
    for dl in letters:
        if not matches(dl, reason):
            continue
        if shown == limit:
            print(f"... more; raise --limit (now {limit})", file=out)
            break
        shown += 1
        print(f"--- {dl.where}  at {format_iso_ms(dl.timestamp_ms)}  from {dl.origin}", file=out)
        print(f"reason: {dl.reason}", file=out)
        for k, v in dl.headers:
            print(f"header {k}: {escape(v, 400)}", file=out)
        print(f"key: {escape(dl.key, 400)}", file=out)
        print("value: " + render_value(dl.value), file=out)
    if not shown:
        print(f"no dead letters in {settings.dlq_topic}"
              + (f" matching {reason!r}" if reason else ""), file=out)
    return shown


async def redrive(settings: Settings, since_ms: int | None, reason: str, dry_run: bool,
                  out: TextIO = sys.stdout) -> dict[str, int]:
    """Send the dead letters that now pass validation back to the orders topic, once."""
    conn = Connection.of(settings)
    parts = await partition_ids(conn, settings.orders_topic)
    if not parts:
        raise DlqError(f"the orders topic {settings.orders_topic!r} does not exist")
    routing = KeyRouting(settings.key_format, len(parts))
    if not dry_run:
        await ensure_ledger(conn, settings.app_id)
    ledger = await read_ledger(conn, settings.app_id)
    letters, _ = await scan(settings, since_ms, "reading dead letters")
    now = int(time.time() * 1000)
    counts = Counter({"dead_letters": len(letters), "redriven": 0, "still_invalid": 0,
                      "already_redriven": 0, "other_reason": 0})
    todo: list[tuple[DeadLetter, Any]] = []
    seen: set[str] = set()
    invalid_kinds: Counter[str] = Counter()
    for dl in letters:
        if not matches(dl, reason):
            counts["other_reason"] += 1
        elif dl.origin in ledger or dl.origin in seen:
            counts["already_redriven"] += 1
        else:
            try:
                order = decode_order(dl.value, now + MAX_FUTURE_MS, settings.mapping,
                                     dl.timestamp_ms)
            except InvalidOrder as exc:
                counts["still_invalid"] += 1
                invalid_kinds[reason_kind(str(exc))] += 1
                continue
            seen.add(dl.origin)
            todo.append((dl, order))
    if not dry_run and todo:
        async with producer(conn, enable_idempotence=True, linger_ms=5) as client:
            with progress_bar(len(todo), "redriving") as advance:
                for i in range(0, len(todo), CHUNK):
                    chunk = todo[i:i + CHUNK]
                    futures = [await client.send(
                        settings.orders_topic, value=dl.value, key=routing.key(o.store_id),
                        partition=routing.partition(o.store_id), timestamp_ms=dl.timestamp_ms,
                        headers=dl.redrive_headers(now)) for dl, o in chunk]
                    acked = [await f for f in futures]  # raises if the broker refused one
                    await record_redriven(client, settings.app_id, [
                        (dl, f"{settings.orders_topic}/{md.partition}/{md.offset}")
                        for (dl, _o), md in zip(chunk, acked)])
                    counts["redriven"] += len(chunk)
                    advance(len(chunk))
    elif dry_run:
        counts["redriven"] = len(todo)
    verb = "would redrive" if dry_run else "redriven"
    print(f"{verb}: {counts['redriven']:,} to {settings.orders_topic}; still invalid (skipped): "
          f"{counts['still_invalid']:,}; already redriven (skipped): "
          f"{counts['already_redriven']:,}"
          + (f"; other reasons (skipped): {counts['other_reason']:,}" if reason else "")
          + f"; of {counts['dead_letters']:,} dead letters"
          + (" (dry run: nothing sent)" if dry_run else ""), file=out)
    for kind, n in invalid_kinds.most_common(5):
        print(f"  still invalid {n:>7,}  {kind}", file=out)
    return dict(counts)


def register(app: faust.App, settings: Settings) -> None:
    @app.command(
        argument("action", type=click.Choice(ACTIONS)),
        option("--reason", default="", help="Only dead letters whose reason contains this "
               "text (case-insensitive)."),
        option("--since", default="", help="Only dead letters from this time on: ISO-8601 "
               "(2026-11-23T00:00:00Z) or a duration back from now (PT1H)."),
        option("--limit", type=int, default=20, show_default=True,
               help="show: at most this many."),
        option("--dry-run", is_flag=True, help="redrive: count, send nothing."),
        option("--json", "as_json", is_flag=True, help="stats: print the summary as JSON."),
    )
    @exit_on_kafka_error(lambda: Connection.of(settings))
    async def dlq(self: object, action: str, reason: str, since: str, limit: int,
                  dry_run: bool, as_json: bool) -> None:
        """Dead letters: stats, show [--reason R] [--limit N], redrive [--dry-run]."""
        try:
            since_ms = parse_since(since, int(time.time() * 1000)) if since else None
            if action == "stats":
                if as_json:
                    summary = await stats(settings, since_ms, reason, io.StringIO())
                    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
                else:
                    await stats(settings, since_ms, reason)
            elif action == "show":
                await show(settings, since_ms, reason, limit)
            else:
                await redrive(settings, since_ms, reason, dry_run)
        except DlqError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
