"""Turning repeated measurements into the table: medians with confidence intervals, and
ratios taken within each repetition (same minutes, same noise) before their median."""

from __future__ import annotations

import platform
import statistics

from bench.measurement import Measurement
from bench.median_ci import median_ci


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def summarize(runs: list[dict[str, Measurement]]) -> dict:
    """``runs``: one dict per repetition, contender -> its (exact) measurement."""
    names = list(dict.fromkeys(n for r in runs for n in r))
    summary: dict = {"contenders": {}, "ratios": {}}
    for name in names:
        ms = [r[name] for r in runs if name in r]
        summary["contenders"][name] = {
            "events_per_s": median_ci([m.events_per_s for m in ms]).to_json(),
            "processed_events_per_s": median_ci([m.processed_events_per_s
                                                 for m in ms]).to_json(),
            "cpu_s_per_million": _median([m.per_million(m.cpu_s) for m in ms]),
            "broker_cpu_s_per_million": _median([m.per_million(m.broker_cpu_s) for m in ms]),
            "peak_rss_mb": _median([m.peak_rss_mb for m in ms]),
            "processed_source": ms[0].processed_source,
            "exact": all(m.exact for m in ms),
        }
    for a in names:
        for b in names:
            ratios = [r[a].events_per_s / r[b].events_per_s for r in runs
                      if a != b and a in r and b in r and r[b].events_per_s > 0]
            if ratios:
                summary["ratios"][f"{a}/{b}"] = median_ci(ratios).to_json()
    return summary


def _fmt(x: float | None, spec: str = ",.0f") -> str:
    return "-" if x is None else format(x, spec)


def _ci(c: dict | None, spec: str = ",.0f") -> str:
    return "-" if c is None else f"{c['median']:{spec}} ({c['low']:{spec}}-{c['high']:{spec}})"


def markdown(summary: dict, meta: dict) -> str:
    c, r = summary["contenders"], summary["ratios"]
    coverage = next(iter(c.values()))["events_per_s"]["coverage"] if c else 0
    lines = [f"Dataset: {meta['events']:,} orders, {meta['stores']:,} stores (Zipf), "
             f"{meta['partitions']} partitions, 60 s tumbling windows; {meta['repeat']} "
             f"repetitions in rotated order; {meta['machine']}. Medians with a "
             f"{coverage:.1%} order-statistic confidence interval; time from the first record "
             "delivered to user code until the group's committed offsets reach the log end; "
             "CPU and peak RSS over that window only.", "",
             "| contender | events/s to committed | events/s to last processed | x ceiling "
             "| CPU s / 1M events | broker CPU s / 1M events | peak RSS MB | exact |",
             "|---|---|---|---|---|---|---|---|"]
    for name, s in c.items():
        ratio = r.get(f"{name}/ceiling")
        x = "1.00" if name == "ceiling" else (_ci(ratio, ".3f") if ratio else "-")
        lines.append(f"| {name} | {_ci(s['events_per_s'])} | "
                     f"{_ci(s['processed_events_per_s'])} | {x} | "
                     f"{_fmt(s['cpu_s_per_million'], '.1f')} | "
                     f"{_fmt(s['broker_cpu_s_per_million'], '.1f')} | "
                     f"{_fmt(s['peak_rss_mb'])} | {'yes' if s['exact'] else 'NO'} |")
    if "orderstats" in c:
        lines += ["", "orderstats vs each (median of the per-repetition ratios, CI): " + ", ".join(
            f"{_ci(r[f'orderstats/{p}'], '.2f')}x {p}" for p in c
            if f"orderstats/{p}" in r)]
    return "\n".join(lines)


def machine() -> str:
    import os

    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, " \
           f"Python {platform.python_version()}"


def code_version() -> str:
    """The commit measured, and whether the working tree differed from it."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes"
                                                  if git("status", "--porcelain") else "")


def latency_markdown(latency: list[dict]) -> str:
    """orderstats' produce-to-visible latency, one row per offered rate, with the cores
    each process used while the load ran (the generator and the broker share the machine)."""
    lines = ["Latency (orderstats only: a probe order produced, then `GET /api/stores/{id}` "
             "polled until it is visible; probes from 10 s into the load):", "",
             "| offered orders/s | probes | p50 ms | p99 ms | max ms | cores: worker "
             "| broker | generator |", "|---|---|---|---|---|---|---|---|"]
    for lat in latency:
        cores = lat.get("cpu_cores_used", {})
        lines.append(f"| {lat['offered_per_s']:,} | {lat['probes']} | {lat['p50_s'] * 1000:.0f} "
                     f"| {lat['p99_s'] * 1000:.0f} | {lat['max_s'] * 1000:.0f} "
                     f"| {_fmt(cores.get('worker'), '.2f')} | {_fmt(cores.get('broker'), '.2f')} "
                     f"| {_fmt(cores.get('generator'), '.2f')} |")
    return "\n".join(lines)


def cardinality_markdown(rows: list[dict]) -> str:
    """bench.cardinality's rows: per store count and contender, beside the main run."""
    lines = ["| stores | contender | events/s (median, CI) | CPU s / 1M events "
             "| events/s, x the main run | CPU per event, x the main run | x quix (CI) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['stores']:,} | {r['contender']} | {_ci(r['events_per_s'])} "
                     f"| {_fmt(r['cpu_s_per_million'], '.1f')} "
                     f"| {_fmt(r['events_per_s_vs_base'], '.2f')} "
                     f"| {_fmt(r['cpu_per_event_vs_base'], '.2f')} "
                     f"| {_ci(r['x_quix'], '.2f')} |")
    return "\n".join(lines)
