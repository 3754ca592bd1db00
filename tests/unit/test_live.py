"""The live page's messages (app/web/live.py): pure functions over the API's shapes."""

from __future__ import annotations

from app.web.live import currencies, store_message, top_message


def fig(orders: int, revenue: dict[str, int], start: str = "2026-11-23T10:01:00Z",
        end: str = "2026-11-23T10:02:00Z") -> dict:
    single = next(iter(revenue.values())) if len(revenue) == 1 else (0 if not revenue else None)
    return {"start": start, "end": end, "orders": orders, "revenue": single,
            "revenue_by_currency": revenue, "items": orders * 2}


def store(sid: str, cur: int, cur_rev: dict, total: int) -> dict:
    return {"store_id": sid, "current": fig(cur, cur_rev),
            "previous": fig(0, {}, "2026-11-23T10:00:00Z", "2026-11-23T10:01:00Z"),
            "totals": {**fig(total, {"JPY": total * 100}), "late": 0}}


def merged(stores: list[dict]) -> dict:
    return {"sort": "orders", "count": len(stores), "stores": stores, "window_size_s": 60,
            "complete": True, "missing_partitions": [], "unreachable_workers": [],
            "as_of": {"watermark": "2026-11-23T10:01:30.000Z", "offsets": {"0": 9}}}


def test_top_message_ranks_the_current_window_and_keeps_currencies_apart():
    stores = [store("a", 1, {"JPY": 500}, 90), store("b", 7, {"USD": 1250}, 50),
              store("c", 3, {"JPY": 900, "USD": 10}, 40), store("d", 0, {}, 30)]
    msg = top_message(merged(stores), top=2)
    assert [s["store_id"] for s in msg["stores"]] == ["a", "b"]  # table rows: lifetime order
    assert msg["count"] == 4
    assert msg["top_current"]["orders"] == [
        {"store_id": "b", "orders": 7}, {"store_id": "c", "orders": 3},
        {"store_id": "a", "orders": 1}]  # d sold nothing this window: no bar
    assert msg["top_current"]["revenue"] == {
        "JPY": [{"store_id": "c", "revenue": 900}, {"store_id": "a", "revenue": 500}],
        "USD": [{"store_id": "b", "revenue": 1250}, {"store_id": "c", "revenue": 10}]}
    assert msg["currencies"] == {"JPY": 0, "USD": 2}
    assert msg["window"] == {"start": "2026-11-23T10:01:00Z", "end": "2026-11-23T10:02:00Z"}
    assert msg["as_of"]["offsets"] == {"0": 9}


def test_currencies_gives_each_code_its_minor_unit_or_none():
    assert currencies(["KWD", "JPY", "USD", "XXX"]) == {"JPY": 0, "KWD": 3, "USD": 2,
                                                        "XXX": None}


def test_store_message_takes_the_previous_window_only_when_adjacent():
    body = {"store_id": "a", "window_size_s": 60, "current": fig(2, {"JPY": 100}),
            "windows": [fig(2, {"JPY": 100}),
                        fig(5, {"JPY": 700}, "2026-11-23T10:00:00Z", "2026-11-23T10:01:00Z")],
            "totals": {**fig(9, {"JPY": 900}), "late": 1}, "as_of": {"watermark": None,
                                                                       "offsets": {}}}
    msg = store_message(body)
    assert msg["previous"]["orders"] == 5 and msg["currencies"] == {"JPY": 0}
    body["windows"][1] = fig(5, {"JPY": 700}, "2026-11-23T09:50:00Z", "2026-11-23T09:51:00Z")
    assert store_message(body)["previous"]["orders"] == 0  # no orders in the window before
