"""``orderstats verify`` against the merged all-stores answer: every difference is named."""

from __future__ import annotations

import copy

from app.cli.verify import diff_all_stores

W0, W1 = "2026-11-22T12:00:00Z", "2026-11-22T12:01:00Z"
TRUTH = {
    "watermark": "2026-11-22T12:01:30.250Z",
    "stores": {
        "s-1": {"totals": {"orders": 3, "revenue": 900, "items": 4, "late": 1},
                "windows": {W0: {"orders": 1, "revenue": 300, "items": 1},
                            W1: {"orders": 1, "revenue": 200, "items": 2}}},
        "s-2": {"totals": {"orders": 1, "revenue": 50, "items": 1, "late": 0},
                "windows": {W0: {"orders": 1, "revenue": 50, "items": 1}}},
    },
}


def window(start: str, orders: int, revenue: int, items: int) -> dict:
    return {"start": start, "end": "(not compared)", "orders": orders, "revenue": revenue,
            "revenue_by_currency": {"JPY": revenue}, "items": items}


def answer() -> dict:
    """What GET /api/stores answers when it matches TRUTH (current window: 12:01)."""
    return {"sort": "orders", "count": 2, "complete": True, "missing_partitions": [],
            "unreachable_workers": [], "window_size_s": 60,
            "as_of": {"watermark": "2026-11-22T12:01:30.250Z", "offsets": {"0": 7}},
            "stores": [
                {"store_id": "s-1", "current": window(W1, 1, 200, 2),
                 "totals": {"orders": 3, "revenue": 900, "items": 4, "late": 1,
                            "revenue_by_currency": {"JPY": 900}}},
                {"store_id": "s-2", "current": window(W1, 0, 0, 0),  # no order in 12:01
                 "totals": {"orders": 1, "revenue": 50, "items": 1, "late": 0,
                            "revenue_by_currency": {"JPY": 50}}}]}


def test_an_exact_answer_has_no_difference():
    assert diff_all_stores(TRUTH, answer()) == []


def test_a_store_the_truth_does_not_know_is_flagged():
    got = answer()
    got["stores"].append({"store_id": "s-ghost", "current": window(W1, 1, 1, 1),
                          "totals": {"orders": 1, "revenue": 1, "items": 1, "late": 0}})
    got["count"] = 3
    problems = diff_all_stores(TRUTH, got)
    assert "s-ghost: known to the API (all stores), not in the truth" in problems
    assert "all stores: count 3 != truth 2" in problems


def test_a_missing_store_a_wrong_total_and_a_wrong_current_window_are_flagged():
    got = answer()
    del got["stores"][1]
    got["stores"][0]["totals"]["late"] = 0
    got["stores"][0]["current"]["orders"] = 2
    problems = diff_all_stores(TRUTH, got)
    assert "s-2: missing from the all-stores answer" in problems
    assert any(p.startswith("s-1 (all stores): totals") for p in problems)
    assert any(p.startswith(f"s-1 (all stores): current window {W1}") for p in problems)


def test_a_current_window_the_truth_has_no_order_in_must_be_empty():
    got = answer()
    got["stores"][1]["current"] = window(W1, 1, 50, 1)
    assert diff_all_stores(TRUTH, got) == [
        f"s-2 (all stores): current window {W1} {{'orders': 1, 'revenue': 50, 'items': 1}} "
        "!= truth {'orders': 0, 'revenue': 0, 'items': 0}"]


def test_freshness_and_completeness_are_compared():
    got = answer()
    got["as_of"]["watermark"] = "2026-11-22T12:01:29.000Z"
    got["complete"], got["missing_partitions"] = False, [3]
    problems = diff_all_stores(TRUTH, got)
    assert any(p.startswith("all stores: as_of.watermark") for p in problems)
    assert any(p.startswith("all stores: incomplete, missing partitions [3]") for p in problems)
    with_offsets = {**copy.deepcopy(TRUTH), "offsets": {"0": 8}}
    assert any(p.startswith("all stores: as_of.offsets")
               for p in diff_all_stores(with_offsets, answer()))
    assert diff_all_stores({**TRUTH, "offsets": {"0": 7}}, answer()) == []
