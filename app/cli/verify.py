"""``orderstats verify``: the live API against a ground truth, store by store, window by window,
and the merged all-stores answer (current windows, totals, freshness, no unknown stores).

Shared by users, the tests and the benchmark: the ground truth is what ``orderstats
generate --truth`` wrote (or any file of the same shape).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import faust
import orjson
from faust.cli import option

FIELDS = ("orders", "revenue", "items")
ALL_LIMIT = 100_000  # GET /api/stores' largest limit


def diff_store(store_id: str, truth: dict[str, Any], answer: dict[str, Any] | None) -> list[str]:
    """Human-readable differences between one store's truth and its API answer."""
    if answer is None:
        return [f"{store_id}: missing from the API"]
    problems = []
    want_totals = truth["totals"]
    got_totals = {k: answer["totals"].get(k) for k in want_totals}
    if got_totals != want_totals:
        problems.append(f"{store_id}: totals {got_totals} != truth {want_totals}")
    got_windows = {w["start"]: {k: w[k] for k in FIELDS} for w in answer["windows"]}
    for start in sorted(set(truth["windows"]) | set(got_windows)):
        want, got = truth["windows"].get(start), got_windows.get(start)
        if want != got:
            problems.append(f"{store_id} window {start}: api {got} != truth {want}")
    return problems


def diff_all_stores(truth: dict[str, Any], answer: dict[str, Any]) -> list[str]:
    """Differences between the truth and the merged all-stores answer (``GET /api/stores``):
    every store listed once with the truth's totals and current window, no store the truth
    does not know, complete, and as fresh as the truth (``as_of.watermark``; and
    ``as_of.offsets`` when the truth names them)."""
    problems = []
    if not answer.get("complete"):
        problems.append(f"all stores: incomplete, missing partitions "
                        f"{answer.get('missing_partitions')}, unreachable workers "
                        f"{answer.get('unreachable_workers')}")
    want_stores = truth["stores"]
    listed: dict[str, dict[str, Any]] = {}
    for s in answer["stores"]:
        if s["store_id"] in listed:
            problems.append(f"all stores: {s['store_id']} listed twice")
        listed[s["store_id"]] = s
    if answer.get("count") != len(want_stores):
        problems.append(f"all stores: count {answer.get('count')} != truth {len(want_stores)}")
    for store_id in sorted(set(listed) - set(want_stores)):
        problems.append(f"{store_id}: known to the API (all stores), not in the truth")
    for store_id, want in sorted(want_stores.items()):
        got = listed.get(store_id)
        if got is None:
            problems.append(f"{store_id}: missing from the all-stores answer")
            continue
        got_totals = {k: got["totals"].get(k) for k in want["totals"]}
        if got_totals != want["totals"]:
            problems.append(f"{store_id} (all stores): totals {got_totals} != truth "
                            f"{want['totals']}")
        current = got["current"]
        want_current = want["windows"].get(current["start"], dict.fromkeys(FIELDS, 0))
        got_current = {k: current[k] for k in FIELDS}
        if got_current != want_current:
            problems.append(f"{store_id} (all stores): current window {current['start']} "
                            f"{got_current} != truth {want_current}")
    as_of = answer.get("as_of") or {}
    if "watermark" in truth and as_of.get("watermark") != truth["watermark"]:
        problems.append(f"all stores: as_of.watermark {as_of.get('watermark')} != truth "
                        f"{truth['watermark']}")
    if "offsets" in truth and as_of.get("offsets") != truth["offsets"]:
        problems.append(f"all stores: as_of.offsets {as_of.get('offsets')} != truth "
                        f"{truth['offsets']}")
    return problems


async def fetch_store(session: aiohttp.ClientSession, base_url: str,
                      store_id: str) -> dict[str, Any] | None:
    async with session.get(f"{base_url}/api/stores/{store_id}",
                           params={"limit": "10000"}) as resp:
        if resp.status == 404:
            return None
        resp.raise_for_status()
        return await resp.json()


async def compare(base_url: str, truth: dict[str, Any], concurrency: int = 16) -> list[str]:
    """All differences between the API at ``base_url`` and ``truth`` (empty = exact match):
    each store asked alone, then all of them in the merged answer. Sends the read token of
    ``ORDERSTATS_API_READ_TOKEN`` when it is set (a secured cluster)."""
    problems: list[str] = []
    sem = asyncio.Semaphore(concurrency)
    token = os.environ.get("ORDERSTATS_API_READ_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                     headers=headers) as session:
        async def one(store_id: str, want: dict[str, Any]) -> None:
            async with sem:
                try:
                    answer = await fetch_store(session, base_url, store_id)
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    problems.append(f"{store_id}: request failed: {exc!r}")
                    return
            problems.extend(diff_store(store_id, want, answer))

        await asyncio.gather(*(one(s, w) for s, w in truth["stores"].items()))
        try:
            async with session.get(f"{base_url}/api/stores",
                                   params={"sort": "orders", "limit": str(ALL_LIMIT)}) as resp:
                resp.raise_for_status()
                problems.extend(diff_all_stores(truth, await resp.json()))
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            problems.append(f"all stores: request failed: {exc!r}")
    return sorted(problems)


def register(app: faust.App) -> None:
    @app.command(
        option("--truth", required=True, help="Ground truth JSON (orderstats generate --truth)."),
        option("--api", default="http://127.0.0.1:6066", show_default=True,
               help="Base URL of any worker."),
        option("--wait", type=float, default=0.0,
               help="Keep comparing for up to this many seconds until it matches."),
    )
    async def verify(self: object, truth: str, api: str, wait: float) -> None:
        """Compare the live API with a ground truth, store by store, window by window."""
        try:
            want = orjson.loads(Path(truth).read_bytes())
        except (OSError, ValueError) as exc:
            print(f"error: cannot read the truth file {truth}: {exc}", file=sys.stderr)
            sys.exit(2)
        problems = await compare_until(api.rstrip("/"), want, wait)
        if problems:
            print(f"{len(problems)} differences:", *problems[:50], sep="\n  ", file=sys.stderr)
            sys.exit(1)
        print(f"exact: {len(want['stores'])} stores match {api}")


async def compare_until(base_url: str, truth: dict[str, Any], wait_s: float) -> list[str]:
    """Compare until there is no difference or ``wait_s`` has passed; the last differences."""
    deadline = time.monotonic() + wait_s
    while True:
        problems = await compare(base_url, truth)
        if not problems or time.monotonic() >= deadline:
            return problems
        await asyncio.sleep(1)
