"""Compare the live API with a generator's ground truth, store by store, window by window."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

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
