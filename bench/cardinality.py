"""The cardinality rows: the same benchmark over more stores, compared with the main run.

With many stores nearly every order opens a window of its own (a changelog record, later a
closed-window result), so the cost per event may grow with the number of stores. Each
extra store count gets its own dataset (same events, same seed, more stores) and the same
contenders and repetitions; its figures are put beside the main run's, per contender
(the table: bench.report.cardinality_markdown).
"""

from __future__ import annotations


def cardinality_rows(base_stores: int, base: dict, extra: dict[int, dict]) -> list[dict]:
    """``base``/``extra[n]``: ``summarize()`` output of the main run and of the run at ``n``
    stores. One row per store count and contender: events/s, CPU per million events and
    both as a multiple of the main run's figure for the same contender."""
    rows = []
    for stores, summary in [(base_stores, base), *sorted(extra.items())]:
        for name, s in summary["contenders"].items():
            b = base["contenders"].get(name)
            cpu, b_cpu = s["cpu_s_per_million"], b and b["cpu_s_per_million"]
            rows.append({
                "stores": stores, "contender": name,
                "events_per_s": s["events_per_s"],
                "cpu_s_per_million": cpu,
                "events_per_s_vs_base": (s["events_per_s"]["median"]
                                         / b["events_per_s"]["median"]
                                         if b and b["events_per_s"]["median"] else None),
                "cpu_per_event_vs_base": cpu / b_cpu if cpu and b_cpu else None,
                "x_quix": summary["ratios"].get(f"{name}/quix"),  # within each repetition
            })
    return rows
