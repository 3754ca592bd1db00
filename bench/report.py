"""Turning repeated measurements into the table: medians, spreads and same-run ratios."""

from __future__ import annotations

import platform
import statistics
from typing import Sequence

from bench.contenders import Measurement


def _median_spread(values: Sequence[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def summarize(runs: list[dict[str, Measurement]]) -> dict:
    """``runs``: one dict per repetition, contender -> measurement of that repetition."""
    names = list(runs[0])
    summary: dict = {"contenders": {}, "ratios": {}}
    for name in names:
        ms = [r[name] for r in runs if name in r]
        rate = _median_spread([m.events_per_s for m in ms])
        summary["contenders"][name] = {
            "events_per_s": {"median": rate[0], "min": rate[1], "max": rate[2]},
            "peak_rss_mb": statistics.median(m.peak_rss_mb for m in ms),
            "cpu_s": statistics.median(m.cpu_s for m in ms),
            "correct": all(m.correct for m in ms),
            "problems": [p for m in ms for p in m.problems][:5],
        }
    # Ratios are taken within each repetition (same minute, same noise), then the median.
    for a in names:
        for b in names:
            if a == b:
                continue
            ratios = [r[a].events_per_s / r[b].events_per_s for r in runs
                      if a in r and b in r and r[b].events_per_s > 0]
            if ratios:
                summary["ratios"][f"{a}/{b}"] = _median_spread(ratios)
    return summary


def markdown(summary: dict, meta: dict) -> str:
    c = summary["contenders"]
    r = summary["ratios"]
    lines = [f"Dataset: {meta['events']:,} orders, {meta['stores']:,} stores (Zipf), "
             f"{meta['partitions']} partitions, 60 s tumbling windows; {meta['repeat']} runs; "
             f"{meta['machine']}.", "",
             "| contender | events/s (median, min-max) | x ceiling | peak RSS MB | CPU s "
             "| exact |", "|---|---|---|---|---|---|"]
    for name, s in c.items():
        e = s["events_per_s"]
        ratio = r.get(f"{name}/ceiling")
        lines.append(f"| {name} | {e['median']:,.0f} ({e['min']:,.0f}-{e['max']:,.0f}) | "
                     f"{ratio[0]:.2f} |" if ratio else f"| {name} | {e['median']:,.0f} "
                     f"({e['min']:,.0f}-{e['max']:,.0f}) | 1.00 |")
        lines[-1] += f" {s['peak_rss_mb']:.0f} | {s['cpu_s']:.1f} | " \
                     f"{'yes' if s['correct'] else 'NO'} |"
    peers = [n for n in c if n != "orderstats"]
    if "orderstats" in c:
        lines += ["", "orderstats vs each: " + ", ".join(
            f"{r[f'orderstats/{p}'][0]:.2f}x {p} ({r[f'orderstats/{p}'][1]:.2f}-"
            f"{r[f'orderstats/{p}'][2]:.2f})" for p in peers if f"orderstats/{p}" in r)]
    for name, s in c.items():
        if s["problems"]:
            lines.append(f"\n{name} mismatches (first 5): {s['problems']}")
    return "\n".join(lines)


def machine() -> str:
    import os

    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, " \
           f"Python {platform.python_version()}"
