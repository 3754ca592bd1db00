import pytest

from app.settings import Settings
from app.web.params import ApiError, choice_param, int_param, time_param
from app.web.merge import merge_parts


def test_params_give_400_with_a_message_naming_the_parameter():
    assert int_param({}, "limit", 60, 0, 100) == 60
    assert int_param({"limit": "5"}, "limit", 60, 0, 100) == 5
    for bad in ("x", "101", "-1"):
        with pytest.raises(ApiError) as info:
            int_param({"limit": bad}, "limit", 60, 0, 100)
        assert info.value.status == 400 and "limit" in info.value.message
    assert time_param({"from": "2026-11-22T12:00:00Z"}, "from") == 1_795_348_800_000
    with pytest.raises(ApiError, match="no UTC offset"):
        time_param({"from": "2026-11-22T12:00:00"}, "from")
    with pytest.raises(ApiError, match="from is required"):
        time_param({}, "from")
    with pytest.raises(ApiError, match="sort must be one of orders, revenue"):
        choice_param({"sort": "name"}, "sort", ("orders", "revenue"))


def store(store_id, orders, revenue):
    return {"store_id": store_id, "current": {}, "totals": {"orders": orders,
                                                            "revenue": revenue}}


def test_merge_takes_each_partition_once_and_names_what_is_missing():
    parts = {
        "http://a": {"partitions": [0, 1], "stores": [store("s1", 5, 10), store("s2", 1, 99)],
                     "progress": {"0": [10, 1000, 0], "1": [20, 3000, 0]}},
        "http://b": {"partitions": [1], "stores": [store("s2", 1, 99)], "progress": {}},
        "http://c": {"error": "ClientConnectorError"},
    }
    merged = merge_parts(parts, Settings(partitions=3), "revenue", 10)
    assert [s["store_id"] for s in merged["stores"]] == ["s2", "s1"]
    assert merged["missing_partitions"] == [2] and not merged["complete"]
    assert merged["unreachable_workers"] == ["http://c"]
    assert merged["as_of"]["offsets"] == {"0": 10, "1": 20}
    assert merged["as_of"]["watermark"] == "1970-01-01T00:00:03.000Z"
