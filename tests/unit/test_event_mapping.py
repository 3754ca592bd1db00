from decimal import Decimal

import orjson
import pytest

from app.currency import NO_CURRENCY, exponent, to_minor
from app.event_mapping import DEFAULT_MAPPING, EventMapping
from app.order import InvalidOrder, Order, decode_order, validate_order
from app.settings import Settings, SettingsError

NOW = 1_795_000_000_000
MAX = NOW + 7 * 86400_000
T_MS = 1_795_348_800_123  # 2026-11-22T12:00:00.123Z

NESTED = EventMapping(store_id="shop.id", order_id="order.id", created_at="order.placed",
                      items="order.lines", item_qty="quantity", total="order.amount.value",
                      currency="order.amount.currency")


def raw(doc):
    return orjson.dumps(doc)


def reason(raw_event, mapping, **kw):
    with pytest.raises(InvalidOrder) as info:
        decode_order(raw_event, MAX, mapping, **kw)
    return str(info.value)


# --- ISO 4217 minor units ----------------------------------------------------------------

@pytest.mark.parametrize("code, places", [("USD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0),
                                          ("KWD", 3), ("BHD", 3), ("CLF", 4), ("KPW", 2)])
def test_minor_unit_exponents(code, places):
    assert exponent(code) == places


@pytest.mark.parametrize("code", ["usd", "US", "USDX", "", "XXX"])
def test_codes_without_an_exponent_are_refused(code):
    with pytest.raises(ValueError):
        exponent(code)


def test_to_minor_is_exact_or_refused():
    assert to_minor(Decimal("12.50"), "USD") == 1250
    assert to_minor(Decimal("12.500"), "USD") == 1250
    assert to_minor(Decimal("1200"), "JPY") == 1200
    assert to_minor(Decimal("1.234"), "KWD") == 1234
    with pytest.raises(ValueError, match="12.345 USD has more than 2 decimal places"):
        to_minor(Decimal("12.345"), "USD")
    with pytest.raises(ValueError, match="more than 0 decimal places"):
        to_minor(Decimal("1200.5"), "JPY")


# --- the default mapping is today's contract ---------------------------------------------

def test_default_mapping_is_todays_contract():
    assert DEFAULT_MAPPING.is_default and EventMapping().is_default
    assert EventMapping.from_env({}) is DEFAULT_MAPPING
    assert Settings.from_env({}).mapping.is_default
    assert not NESTED.is_default
    doc = {"order_id": "o-1", "store_id": "s-042", "created_at": "2026-11-22T12:00:00.123Z",
           "items": [{"sku": "A-1", "qty": 2, "unit_price": 450}], "total": 900,
           "currency": "jpy"}
    order = decode_order(raw(doc), MAX)
    assert order == Order("o-1", "s-042", T_MS, 2, 900, "JPY", 900)
    assert decode_order(raw(doc), MAX, EventMapping()) == order
    assert validate_order(doc, MAX, DEFAULT_MAPPING) == order
    del doc["currency"]
    assert decode_order(raw(doc), MAX).currency == NO_CURRENCY


@pytest.mark.parametrize("change, text", [
    ({"store_id": 42}, "store_id must be a non-empty string"),  # numeric ids: custom only
    ({"total": "9.00"}, "total must be an integer, got str"),
    ({"items": [{"qty": 1, "unit_price": 1}]}, "items[0].sku must be a non-empty string"),
    ({"currency": 5}, "currency must be a string when present"),
])
def test_default_mapping_keeps_todays_reasons(change, text):
    doc = {"order_id": "o-1", "store_id": "s-042", "created_at": "2026-11-22T12:00:00.123Z",
           "items": [], "total": 900, **change}
    assert reason(raw(doc), DEFAULT_MAPPING) == text


# --- custom mappings ---------------------------------------------------------------------

def nested_event(**order):
    doc = {"shop": {"id": 42, "name": "Main St"},
           "order": {"id": "A-1001", "placed": "2026-11-22T21:00:00.123+09:00",
                     "lines": [{"quantity": 2}, {"quantity": 3, "sku": "x"}],
                     "amount": {"value": 900, "currency": "jpy"}}}
    doc["order"].update(order)
    return raw(doc)


def test_nested_dotted_paths_and_numeric_store_id():
    assert decode_order(nested_event(), MAX, NESTED) == Order("A-1001", "42", T_MS, 5, 900, "JPY")


@pytest.mark.parametrize("change, text", [
    ({"id": None}, "order.id must be a non-empty string or an integer, got nothing"),
    ({"id": True}, "order.id must be a non-empty string or an integer, got bool"),
    ({"lines": [{"quantity": 0}]}, "order.lines[0].quantity must be between 1 and"),
    ({"lines": [{"qty": 1}]}, "order.lines[0].quantity must be an integer, got NoneType"),
    ({"lines": {}}, "order.lines must be a list"),
    ({"amount": {"value": -1}}, "order.amount.value must be between 0"),
    ({"amount": 900}, "order.amount.value must be an integer, got NoneType"),
    ({"amount": {"value": 900, "currency": "yen!"}}, "order.amount.currency must be a currency"),
    ({"placed": "2026-11-22T12:00:00"}, "order.placed is not an ISO-8601 time with offset"),
])
def test_custom_reasons_name_the_path(change, text):
    assert text in reason(nested_event(**change), NESTED)


def flat(**doc):
    base = {"order_id": 1001, "store_id": "s-1", "ts": T_MS, "total": 900}
    return raw({k: v for k, v in {**base, **doc}.items() if v is not ...})


def test_epoch_ms():
    m = EventMapping(created_at="ts", time_format="epoch_ms", items="")
    assert decode_order(flat(), MAX, m) == Order("1001", "s-1", T_MS, 0, 900, NO_CURRENCY)
    assert "must be epoch milliseconds (an integer), got str" in reason(flat(ts="1"), m)
    assert "looks like epoch seconds" in reason(flat(ts=T_MS // 1000), m)
    assert "outside the accepted range" in reason(flat(ts=5), m)


@pytest.mark.parametrize("ts, ms", [(1_795_348_800, 1_795_348_800_000),
                                    (1_795_348_800.123, T_MS),
                                    ("1795348800.123", T_MS),
                                    ("1795348800.1234999", T_MS),
                                    ("1795348800.1235", T_MS + 1)])  # half to even
def test_epoch_seconds(ts, ms):
    m = EventMapping(created_at="ts", time_format="epoch_s", items="")
    assert decode_order(flat(ts=ts), MAX, m).created_at_ms == ms


def test_epoch_seconds_refused():
    m = EventMapping(created_at="ts", time_format="epoch_s", items="")
    assert "must be epoch seconds" in reason(flat(ts="1e9"), m)
    assert "looks like epoch milliseconds" in reason(flat(ts=T_MS), m)


def test_record_timestamp():
    m = EventMapping(created_at="", time_format="record", items="")
    event = flat(ts=...)
    assert decode_order(event, MAX, m, record_ts_ms=T_MS).created_at_ms == T_MS
    assert "the Kafka record has no timestamp" in reason(event, m)
    assert "the Kafka record has no timestamp" in reason(event, m, record_ts_ms=-1)
    assert "outside the accepted range" in reason(event, m, record_ts_ms=5)


USD_MAJOR = EventMapping(items="", time_format="epoch_ms", created_at="ts", money="major")


@pytest.mark.parametrize("total, currency, minor", [
    (12.5, "USD", 1250), ("12.50", "usd", 1250), (12, "USD", 1200), ("0.10", "USD", 10),
    ("1200", "JPY", 1200), (1200, "JPY", 1200), ("1.234", "KWD", 1234), (0.1, "KWD", 100),
])
def test_major_units_convert_exactly(total, currency, minor):
    order = decode_order(flat(total=total, currency=currency), MAX, USD_MAJOR)
    assert (order.total, order.currency) == (minor, currency.upper())


@pytest.mark.parametrize("total, currency, text", [
    (12.345, "USD", "total 12.345 USD has more than 2 decimal places"),
    ("12.345", "USD", "total 12.345 USD has more than 2 decimal places"),
    ("1200.5", "JPY", "total 1200.5 JPY has more than 0 decimal places"),
    (0.30000000000000004, "USD", "has more than 2 decimal places"),
    ("-1.00", "USD", "total must be between 0 and 1000000000000000 minor units, got -1.00 USD"),
    ("12,50", "USD", 'total must be a decimal number or a string like "12.50"'),
    ("1e3", "USD", 'total must be a decimal number or a string like "12.50"'),
    (True, "USD", 'total must be a decimal number'),
    ("12.50", ..., "total is in major units but the event names no currency"),
    ("12.50", "XAU", "total is in major units but XAU has no minor unit"),
    ("10000000000000.01", "USD", "must be between 0 and 1000000000000000 minor units"),
])
def test_major_units_refused_with_the_reason(total, currency, text):
    assert text in reason(flat(total=total, currency=currency), USD_MAJOR)


def test_default_currency_when_the_event_has_none():
    m = EventMapping(items="", time_format="epoch_ms", created_at="ts", money="major",
                     default_currency="usd")
    assert decode_order(flat(total="9.99"), MAX, m)[4:6] == (999, "USD")
    assert decode_order(flat(total="9.99", currency="EUR"), MAX, m)[4:6] == (999, "EUR")
    no_field = EventMapping(items="", time_format="epoch_ms", created_at="ts", money="major",
                            currency="", default_currency="KWD")
    assert decode_order(flat(total="9.999", currency="USD"), MAX, no_field)[4:6] == (9999, "KWD")


# --- declaring the mapping -----------------------------------------------------------------

def test_environment_variables():
    env = {"ORDERSTATS_FIELD_STORE_ID": "shop.id", "ORDERSTATS_FIELD_ORDER_ID": "order.id",
           "ORDERSTATS_FIELD_CREATED_AT": "order.placed", "ORDERSTATS_FIELD_ITEMS": "order.lines",
           "ORDERSTATS_FIELD_ITEM_QTY": "quantity", "ORDERSTATS_FIELD_TOTAL": "order.amount.value",
           "ORDERSTATS_FIELD_CURRENCY": "order.amount.currency"}
    assert EventMapping.from_env(env) == NESTED
    assert Settings.from_env(env).mapping == NESTED
    m = EventMapping.from_env({"ORDERSTATS_FIELD_ITEMS": "-", "ORDERSTATS_FIELD_CURRENCY": "-",
                               "ORDERSTATS_TIME_FORMAT": "record",
                               "ORDERSTATS_FIELD_CREATED_AT": "-",
                               "ORDERSTATS_MONEY_FORMAT": "major",
                               "ORDERSTATS_DEFAULT_CURRENCY": "eur"})
    assert (m.items, m.currency, m.created_at, m.time_format, m.money, m.default_currency) == (
        "", "", "", "record", "major", "EUR")
    assert EventMapping.from_env({"ORDERSTATS_FIELD_TOTAL": ""}) is DEFAULT_MAPPING  # empty=unset


def test_toml_file_and_variables_override_it(tmp_path):
    path = tmp_path / "mapping.toml"
    path.write_text('[mapping]\nstore_id = "shop.id"\norder_id = "order.id"\n'
                    'created_at = "order.ts"\ntime_format = "epoch_ms"\nmoney = "major"\n'
                    'items = ""\ncurrency = "order.currency"\ndefault_currency = "USD"\n')
    m = EventMapping.from_env({"ORDERSTATS_MAPPING_FILE": str(path)})
    assert (m.store_id, m.order_id, m.created_at, m.time_format, m.money, m.items,
            m.currency, m.default_currency) == ("shop.id", "order.id", "order.ts", "epoch_ms",
                                                "major", "", "order.currency", "USD")
    event = raw({"shop": {"id": 7}, "order": {"id": 99, "ts": T_MS}, "total": "19.99"})
    assert decode_order(event, MAX, m) == Order("99", "7", T_MS, 0, 1999, "USD")
    m2 = EventMapping.from_env({"ORDERSTATS_MAPPING_FILE": str(path),
                                "ORDERSTATS_MONEY_FORMAT": "minor",
                                "ORDERSTATS_FIELD_STORE_ID": "store"})
    assert (m2.money, m2.store_id, m2.order_id) == ("minor", "store", "order.id")
    path.write_text('[mapping]\nmoney_format = "major"\n')
    assert EventMapping.from_env({"ORDERSTATS_MAPPING_FILE": str(path)}).money == "major"


@pytest.mark.parametrize("env, message", [
    ({"ORDERSTATS_TIME_FORMAT": "unix"},
     "ORDERSTATS_TIME_FORMAT='unix': must be one of iso, epoch_ms, epoch_s, record"),
    ({"ORDERSTATS_MONEY_FORMAT": "cents"}, "ORDERSTATS_MONEY_FORMAT='cents': must be one of"),
    ({"ORDERSTATS_DEFAULT_CURRENCY": "dollar"}, "ORDERSTATS_DEFAULT_CURRENCY='dollar'"),
    ({"ORDERSTATS_FIELD_STORE_ID": "shop..id"}, "ORDERSTATS_FIELD_STORE_ID='shop..id'"),
    ({"ORDERSTATS_FIELD_TOTAL": "-"}, "ORDERSTATS_FIELD_TOTAL='-': the event must have"),
    ({"ORDERSTATS_FIELD_CREATED_AT": "-"}, "ORDERSTATS_FIELD_CREATED_AT='-'"),
    ({"ORDERSTATS_MAPPING_FILE": "/nonexistent/m.toml"},
     "ORDERSTATS_MAPPING_FILE='/nonexistent/m.toml': cannot read it"),
])
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        EventMapping.from_env(env)
    with pytest.raises(SettingsError):
        Settings.from_env(env)


@pytest.mark.parametrize("text, message", [
    ('[mapping]\ntime_format = "unix"\n', "[mapping] time_format='unix': must be one of"),
    ('[mapping]\nstore = "x"\n', "unknown key(s) store"),
    ('[mapping]\nitem_qty = 3\n', "[mapping] item_qty=3: must be a string"),
    ('store_id = "x"\n', "needs a [mapping] table"),
    ("[mapping\n", "not valid TOML"),
])
def test_bad_files_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        EventMapping.from_env({"ORDERSTATS_MAPPING_FILE": str(path)})
    assert message in str(info.value) and str(path) in str(info.value)


def test_an_empty_currency_is_no_currency():
    base = {"order_id": "o-1", "store_id": "s-1", "created_at": "2026-11-22T12:00:00.123Z",
            "items": [], "total": 900, "currency": ""}
    assert decode_order(raw(base), MAX).currency == NO_CURRENCY
    m = EventMapping(default_currency="EUR")
    assert decode_order(raw(base), MAX, m).currency == "EUR"
