"""Property tests of the event decoder: any input gives an order or a precise reason."""

from __future__ import annotations

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from app.event_mapping import EventMapping
from app.order import InvalidOrder, Order, decode_order

NOW = 1_795_000_000_000
MAX = NOW + 7 * 86400_000
SHOP = EventMapping(store_id="shop.id", order_id="id", created_at="ts", items="lines",
                    item_qty="quantity", total="amount.value", currency="amount.currency",
                    time_format="epoch_ms", money="major")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats()  # NaN, Infinity, > 64 bits too
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30)


def decodes_or_explains(raw: bytes, mapping: EventMapping | None = None) -> None:
    try:
        order = decode_order(raw, MAX, mapping or EventMapping())
    except InvalidOrder as exc:
        assert str(exc), "an invalid event needs a reason"
    else:
        assert isinstance(order, Order)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_an_order_or_a_reason(raw):
    decodes_or_explains(raw)
    decodes_or_explains(raw, SHOP)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_any_json_gives_an_order_or_a_reason(doc):
    raw = json.dumps(doc).encode()  # the stdlib writes what orjson would refuse to
    decodes_or_explains(raw)
    decodes_or_explains(raw, SHOP)


ids = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1,
              max_size=40).filter(str.strip)


@settings(max_examples=300, deadline=None)
@given(order_id=ids, store_id=ids, ms=st.integers(946_684_800_000, MAX),
       qtys=st.lists(st.integers(1, 1000), min_size=1, max_size=5),
       total=st.integers(0, 10**12))
def test_a_valid_order_survives_encode_and_decode(order_id, store_id, ms, qtys, total):
    # Written out with the stdlib, not app.timefmt (the parser's own module): the property
    # must not be a function checked against its twin.
    import datetime
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    iso = (epoch + datetime.timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")
    doc = {"order_id": order_id, "store_id": store_id, "created_at": iso,
           "items": [{"sku": f"k{i}", "qty": q, "unit_price": 1} for i, q in enumerate(qtys)],
           "total": total, "currency": "JPY"}
    order = decode_order(orjson.dumps(doc), MAX)
    assert order == Order(order_id, store_id, ms, sum(qtys), total, "JPY", sum(qtys))
