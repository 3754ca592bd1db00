"""The gateway without Kafka: keys (hashing, store scoping), NDJSON limits, error shapes."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agents.routing import KeyRouting
from app.cli.gateway import load_keys
from app.gateway.app import build_app
from app.gateway.auth import KeyFileError, KeyRing, hash_key, presented_key
from app.gateway.ingest import BatchTooLarge, Unavailable, split_ndjson
from app.settings import Settings
from app.timefmt import format_iso_ms

KEY_A, KEY_B, ADMIN = "key-a-secret", "key-b-secret", "admin-secret"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ring() -> KeyRing:
    return KeyRing.load(text=f"{sha(KEY_A)} s-1,s-2; {sha(KEY_B)} s-3", admin_sha256=sha(ADMIN))


def test_keys_are_stored_hashed_and_scoped_to_their_stores(tmp_path):
    assert hash_key(KEY_A) == sha(KEY_A)
    keys = ring()
    a = keys.authenticate(KEY_A)
    assert a is not None and a.may_submit("s-1") and a.may_submit("s-2")
    assert not a.may_submit("s-3")
    b = keys.authenticate(KEY_B)
    assert b is not None and b.may_submit("s-3") and not b.may_submit("s-1")
    admin = keys.authenticate(ADMIN)
    assert admin is not None and admin.may_submit("anything")
    assert keys.authenticate("wrong") is None and keys.authenticate(None) is None
    assert keys.authenticate(sha(KEY_A)) is None  # the hash itself is not a key
    assert KEY_A not in a.name and sha(KEY_A) not in a.name  # safe to log

    f = tmp_path / "keys"
    f.write_text(f"# comment\n\n{sha(KEY_A).upper()}  s-9 , s-8  # trailing\n")
    from_file = KeyRing.load(file=str(f))
    assert from_file.authenticate(KEY_A).stores == frozenset({"s-8", "s-9"})


@pytest.mark.parametrize("text, problem", [
    ("plain-key-pasted-by-mistake s-1", "not a sha256"),
    (f"{'ab' * 32}", "no stores"),
    (f"{'ab' * 32} s-1\n{'ab' * 32} s-2", "twice"),
])
def test_bad_key_entries_name_the_entry_never_echo_it(tmp_path, text, problem):
    f = tmp_path / "keys"
    f.write_text(text)
    with pytest.raises(KeyFileError) as err:
        KeyRing.load(file=str(f))
    assert problem in str(err.value) and str(f) in str(err.value)
    assert "plain-key-pasted" not in str(err.value)


def test_without_keys_only_loopback():
    assert not KeyRing().configured and KeyRing().authenticate(None).any_store
    load_keys(Settings(gateway_bind="127.0.0.1"))
    with pytest.raises(SystemExit) as err:
        load_keys(Settings(gateway_bind="0.0.0.0"))
    assert "refuses to listen on 0.0.0.0 without API keys" in str(err.value)
    load_keys(Settings(gateway_bind="0.0.0.0", gateway_keys=f"{sha(KEY_A)} s-1"))


def test_presented_key_from_either_header():
    assert presented_key("Bearer abc", None) == "abc"
    assert presented_key("bearer  abc ", None) == "abc"
    assert presented_key(None, "xyz") == "xyz"
    assert presented_key("Basic Zm9v", None) is None


def test_ndjson_split_and_line_limit():
    body = b'{"a":1}\n\n  \n{"b":2}\r\n{"c":3}'
    assert split_ndjson(body, 3) == [(1, b'{"a":1}'), (4, b'{"b":2}'), (5, b'{"c":3}')]
    with pytest.raises(BatchTooLarge):
        split_ndjson(body, 2)


class FakeSink:
    """The Kafka side, acknowledging everything (or unavailable)."""

    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.sent: list = []
        self.topic = "orders"
        self.routing = KeyRouting("raw", 8)
        self.last_problem = "Kafka is away"

    @property
    def ready(self) -> bool:
        return self.up

    async def send(self, orders, timestamp_ms):
        if not self.up:
            raise Unavailable(self.last_problem)
        self.sent.extend(orders)
        return list(orders), None


def order(oid: str, store: str) -> bytes:
    import time
    return json.dumps({"order_id": oid, "store_id": store,
                       "created_at": format_iso_ms(int(time.time() * 1000)),
                       "items": [{"sku": "A", "qty": 2, "unit_price": 50}],
                       "total": 100}).encode()


def call(sink: FakeSink, method: str, path: str, body: bytes = b"",
         key: str | None = KEY_A, settings: Settings | None = None):
    async def go():
        app = build_app(settings or Settings(gateway_batch_max_lines=5,
                                             gateway_batch_max_bytes=4096), ring(), sink)
        async with TestClient(TestServer(app)) as client:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            resp = await client.request(method, path, data=body, headers=headers)
            text = await resp.text()
            return resp.status, dict(resp.headers), json.loads(text) if text[:1] in "{[" else text
    return asyncio.run(go())


def is_error(body, code: str) -> bool:
    return set(body["error"]) >= {"code", "message"} and body["error"]["code"] == code


def test_accepts_and_answers_202_with_ids():
    sink = FakeSink()
    sent = order("o-1", "s-1")
    status, _, body = call(sink, "POST", "/orders", sent + b"\n")
    assert status == 202 and body == {"accepted": ["o-1"], "count": 1}
    assert sink.sent[0].raw == sent  # the bytes as sent are what the workers will decode


def test_invalid_items_are_listed_and_valid_ones_accepted():
    sink = FakeSink()
    body = b"\n".join([order("o-1", "s-1"), b"{not json", order("o-2", "s-2"),
                       b'{"order_id": "o-3"}'])
    status, _, answer = call(sink, "POST", "/orders/batch", body)
    assert status == 400 and is_error(answer, "invalid_orders")
    assert [i["line"] for i in answer["error"]["items"]] == [2, 4]
    assert all(i["reason"] for i in answer["error"]["items"])
    assert answer["accepted"] == ["o-1", "o-2"] and len(sink.sent) == 2


def test_another_stores_order_is_403_and_nothing_is_sent():
    sink = FakeSink()
    body = b"\n".join([order("o-1", "s-1"), order("o-2", "s-3")])
    status, _, answer = call(sink, "POST", "/orders/batch", body)
    assert status == 403 and is_error(answer, "forbidden") and sink.sent == []
    assert answer["error"]["items"] == [{"line": 2, "store_id": "s-3"}]
    assert call(sink, "POST", "/orders", order("o-9", "s-3"), key=ADMIN)[0] == 202


def test_missing_or_unknown_key_is_401_without_echo():
    for key in (None, "nope-not-a-key"):
        status, headers, answer = call(FakeSink(), "POST", "/orders", order("o", "s-1"), key=key)
        assert status == 401 and is_error(answer, "unauthorized")
        assert "WWW-Authenticate" in headers and "nope-not-a-key" not in json.dumps(answer)


def test_limits_are_413():
    sink = FakeSink()
    status, _, answer = call(sink, "POST", "/orders/batch",
                             b"\n".join(order(f"o-{i}", "s-1") for i in range(6)))
    assert status == 413 and is_error(answer, "too_many_lines") and sink.sent == []
    status, _, answer = call(sink, "POST", "/orders/batch", b" " * 5000 + order("o", "s-1"))
    assert status == 413 and is_error(answer, "too_large")


def test_unavailable_is_503_with_retry_after_and_ready_says_so():
    sink = FakeSink(up=False)
    status, headers, answer = call(sink, "POST", "/orders", order("o-1", "s-1"))
    assert status == 503 and headers["Retry-After"] and is_error(answer, "kafka_unavailable")
    status, headers, answer = call(sink, "GET", "/ready")
    assert status == 503 and is_error(answer, "not_ready") and headers["Retry-After"]
    assert call(FakeSink(), "GET", "/ready")[0] == 200
    assert call(sink, "GET", "/health")[0] == 200


def test_unknown_routes_and_methods_have_the_error_shape():
    status, _, answer = call(FakeSink(), "GET", "/nope")
    assert status == 404 and is_error(answer, "not_found")
    status, _, answer = call(FakeSink(), "GET", "/orders")
    assert status == 405 and is_error(answer, "method_not_allowed")
    status, _, answer = call(FakeSink(), "POST", "/orders", b"  ")
    assert status == 400 and is_error(answer, "empty")


def test_metrics_count_requests_and_orders_and_never_show_keys():
    async def go():
        app = build_app(Settings(), ring(), FakeSink())
        async with TestClient(TestServer(app)) as client:
            h = {"X-API-Key": KEY_A}
            await client.post("/orders", data=order("o-1", "s-1"), headers=h)
            await client.post("/orders", data=b"{}", headers=h)
            return await (await client.get("/metrics")).text()
    text = asyncio.run(go())
    assert 'orderstats_gateway_requests_total{route="/orders",status="202"} 1.0' in text
    assert "orderstats_gateway_orders_accepted_total 1.0" in text
    assert 'orderstats_gateway_orders_rejected_total{reason="invalid"} 1.0' in text
    assert "orderstats_gateway_request_seconds_bucket" in text
    assert KEY_A not in text and sha(KEY_A) not in text


def test_gateway_settings_are_read_and_checked():
    from app.settings import SettingsError
    s = Settings.from_env({"ORDERSTATS_GATEWAY_PORT": "7000", "ORDERSTATS_GATEWAY_BIND": "0.0.0.0",
                           "ORDERSTATS_GATEWAY_ADMIN_KEY_SHA256": sha(ADMIN),
                           "ORDERSTATS_GATEWAY_BATCH_MAX_LINES": "10",
                           "ORDERSTATS_TEST_BATCH_DELAY_S": "0.5"})
    assert (s.gateway_port, s.gateway_bind, s.gateway_batch_max_lines) == (7000, "0.0.0.0", 10)
    assert s.test_batch_delay_s == 0.5 and Settings().gateway_port == 6070
    with pytest.raises(SettingsError, match="ORDERSTATS_GATEWAY_ADMIN_KEY_SHA256"):
        Settings.from_env({"ORDERSTATS_GATEWAY_ADMIN_KEY_SHA256": ADMIN})  # the key, not a hash
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"ORDERSTATS_GATEWAY_ADMIN_KEY_SHA256": ADMIN})
    assert ADMIN not in str(err.value)
