"""Merging the partial answers of several workers into one: pure, no Faust, no HTTP."""

from __future__ import annotations

import heapq
from typing import Any

from app.settings import Settings
from app.timefmt import format_iso_ms


def as_of(progress: dict[int, list[int]], epoch: int = 1) -> dict[str, Any]:
    """How fresh an answer is: highest event time seen, the last offset reflected, and the
    state epoch it comes from (app/kafka/epoch.py; an answer never mixes two)."""
    watermark = max((v[1] for v in progress.values()), default=0)
    return {"watermark": format_iso_ms(watermark) if watermark else None,
            "offsets": {str(p): v[0] for p, v in sorted(progress.items())},
            "epoch": epoch}


def merge_parts(parts: dict[str, Any], settings: Settings, sort: str,
                limit: int, epoch: int = 1) -> dict[str, Any]:
    """Merge per-worker store lists of state epoch ``epoch``; each partition is taken once,
    absent ones are named. A part of another epoch is left out (its worker counts as
    unreachable): one answer never mixes two epochs."""
    seen: set[int] = set()
    stores: list[dict] = []
    progress: dict[int, list[int]] = {}
    for url in sorted(parts):
        part = parts[url]
        if "error" not in part and part.get("epoch", epoch) != epoch:
            parts = {**parts, url: {"error": f"epoch {part['epoch']}, not {epoch}"}}
        if "error" in parts[url]:
            continue
        if seen.intersection(part["partitions"]):
            continue  # an overlap means a rebalance in flight; the first answer stands
        seen.update(part["partitions"])
        stores.extend(part["stores"])
        progress.update({int(p): v for p, v in part["progress"].items()})
    # revenue is null for a store with several currencies: it sorts as 0
    def rank(s: dict) -> tuple:
        return -(s["totals"][sort] or 0), s["store_id"]

    count = len(stores)
    if limit < count // 4:  # the top few of many: a heap, O(n log limit), not a full sort
        stores = heapq.nsmallest(limit, stores, key=rank)
    else:
        stores.sort(key=rank)
    missing = sorted(set(range(settings.partitions)) - seen)
    return {
        "sort": sort,
        "count": count,
        "stores": stores[:limit],
        "window_size_s": settings.window_size_s,
        "complete": not missing,
        "missing_partitions": missing,
        "unreachable_workers": sorted(u for u, p in parts.items() if "error" in p),
        "as_of": as_of(progress, epoch),
    }


def merge_cluster(statuses: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Merge per-worker statuses into one view of every partition's owner and lag."""
    owners: dict[int, dict[str, Any]] = {p: {"active": None, "standby": []}
                                          for p in range(settings.partitions)}
    for url, st in sorted(statuses.items()):
        if "error" in st:
            continue
        for p, info in st["partitions"].items():
            entry = owners[int(p)]
            if info["role"] == "active":
                entry.update(active=url, lag=info["lag"], last_offset=info["last_offset"],
                             log_end=info["log_end"], watermark=info["watermark"],
                             lost_offsets=info.get("lost_offsets", 0))
            else:
                entry["standby"].append(url)
    unowned = sorted(p for p, e in owners.items() if e["active"] is None)
    return {"workers": [{"url": url, **st} for url, st in sorted(statuses.items())],
            "partitions": {str(p): e for p, e in owners.items()},
            "complete": not unowned, "unowned_partitions": unowned,
            "total_lag": sum(e.get("lag") or 0 for e in owners.values()),
            "repartitioned": sum(st.get("repartitioned", 0) for st in statuses.values()
                                 if "error" not in st),
            "events": sum_events(st.get("events", {}) for st in statuses.values()
                                 if "error" not in st)}


def sum_events(per_worker: Any) -> dict[str, int]:
    """Per-outcome event counts added over the workers that answered (each counts what it
    processed since it started, so a restarted worker starts again from 0)."""
    total: dict[str, int] = {}
    for events in per_worker:
        for outcome, n in events.items():
            total[outcome] = total.get(outcome, 0) + n
    return total
