import orjson
import pytest

from app.order import InvalidOrder, Order, decode_order, validate_order

NOW = 1_795_000_000_000
MAX = NOW + 7 * 86400_000


def event(**changes):
    doc = {"order_id": "o-1", "store_id": "s-042", "created_at": "2026-11-22T12:00:00.123Z",
           "items": [{"sku": "A-1", "qty": 2, "unit_price": 450}, {"sku": "B", "qty": 1,
                                                                   "unit_price": 0}],
           "total": 900, "currency": "JPY"}
    doc.update(changes)
    return orjson.dumps({k: v for k, v in doc.items() if v is not ...})


def test_valid_order_is_decoded_with_item_count_and_event_time():
    order = decode_order(event(extra_field={"kept": True}), MAX)
    assert order == Order("o-1", "s-042", 1_795_348_800_123, 3, 900, "JPY", items_value=900)


def test_offsets_other_than_z_are_converted_to_utc():
    order = decode_order(event(created_at="2026-11-22T21:00:00.123+09:00"), MAX)
    assert order.created_at_ms == 1_795_348_800_123


@pytest.mark.parametrize("raw, reason", [
    (b"\xff{", "not valid UTF-8 JSON"),
    (b"[1]", "must be a JSON object"),
    (None, "no value"),
    (event(store_id=...), "store_id must be a non-empty string"),
    (event(order_id=""), "order_id must be a non-empty string"),
    (event(order_id="x" * 201), "longer than 200"),
    (event(total=-1), "total must be between 0"),
    (event(total=9.5), "total must be an integer, got float"),
    (event(total=True), "total must be an integer, got bool"),
    (event(total="900"), "total must be an integer, got str"),
    (event(created_at="yesterday"), "created_at is not an ISO-8601"),
    (event(created_at="2026-11-22T12:00:00"), "no UTC offset"),
    (event(created_at=1700000000), "created_at is not an ISO-8601"),
    (event(created_at="1999-12-31T23:59:59Z"), "outside the accepted range"),
    (event(created_at="2099-01-01T00:00:00Z"), "outside the accepted range"),
    (event(items={}), "items must be a list"),
    (event(items=[1]), "items[0] must be an object"),
    (event(items=[{"sku": "A", "qty": 0, "unit_price": 1}]), "items[0].qty must be between"),
    (event(items=[{"qty": 1, "unit_price": 1}]), "items[0].sku"),
    (event(items=[{"sku": "A", "qty": 1, "unit_price": -5}]), "unit_price must be between"),
    (event(items=[{"sku": "A", "qty": 1, "unit_price": 1}] * 1001), "more than 1000"),
    (event(currency=5), "currency must be a string"),
    (b" " * 1_000_001, "more than 1000000"),
])
def test_invalid_events_name_the_problem(raw, reason):
    with pytest.raises(InvalidOrder) as info:
        decode_order(raw, MAX)
    assert reason in str(info.value)


@pytest.mark.parametrize("bad", ["s\x00-1", "s-1\n", "\x1b[31ms", "s\x7f", "s\x85"])
def test_ids_with_control_characters_are_refused_with_the_position(bad):
    doc = {"order_id": "o-1", "store_id": bad, "created_at": "2026-11-22T12:00:00Z",
           "items": [{"sku": "A", "qty": 1, "unit_price": 1}], "total": 1}
    with pytest.raises(InvalidOrder, match=r"store_id contains the control character U\+"):
        validate_order(doc, 2_000_000_000_000)


def test_printable_unicode_ids_are_fine():
    doc = {"order_id": "注文-1", "store_id": "店舗 ü", "created_at": "2026-11-22T12:00:00Z",
           "items": [{"sku": "A", "qty": 1, "unit_price": 1}], "total": 1}
    assert validate_order(doc, 2_000_000_000_000).store_id == "店舗 ü"


def test_a_total_that_disagrees_with_its_items_is_counted_as_sent():
    """Discounts, shipping and tax make totals differ from the items: the total counts, and
    ``items_value`` lets the pipeline count the disagreement (orderstats_total_mismatch)."""
    order = decode_order(event(total=1000), MAX)
    assert (order.total, order.items_value) == (1000, 900)
