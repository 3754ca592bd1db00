"""``orderstats verify``: the live API against a ground truth, store by store, window by window.

Shared by users, the tests and the benchmark: the ground truth is what ``orderstats
generate --truth`` wrote (or any file of the same shape).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import faust
import orjson
from faust.cli import option

FIELDS = ("orders", "revenue", "items")


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


async def fetch_store(session: aiohttp.ClientSession, base_url: str,
                      store_id: str) -> dict[str, Any] | None:
    async with session.get(f"{base_url}/api/stores/{store_id}",
                           params={"limit": "10000"}) as resp:
        if resp.status == 404:
            return None
        resp.raise_for_status()
        return await resp.json()


async def compare(base_url: str, truth: dict[str, Any], concurrency: int = 16) -> list[str]:
    """All differences between the API at ``base_url`` and ``truth`` (empty = exact match)."""
    problems: list[str] = []
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async def one(store_id: str, want: dict[str, Any]) -> None:
            async with sem:
                try:
                    answer = await fetch_store(session, base_url, store_id)
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    problems.append(f"{store_id}: request failed: {exc!r}")
                    return
            problems.extend(diff_store(store_id, want, answer))

        await asyncio.gather(*(one(s, w) for s, w in truth["stores"].items()))
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
