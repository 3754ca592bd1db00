"""The pure access rules: tokens and levels, constant-time comparison, cookie, redirects, CORS,
and settings that never show a secret."""

from __future__ import annotations

import hmac

import pytest

from app.access import Access, Level, bearer, safe_next, session_cookie
from app.cors import Cors
from app.gateway.auth import KeyRing, hash_key
from app.settings import Settings, SettingsError

READ = "read-token-0123456789"
ADMIN = "admin-token-0123456789"
BOTH = Access(READ, ADMIN)


def test_unset_tokens_leave_everything_open():
    open_ = Access()
    assert not open_.enabled
    for method, path in [("GET", "/api/stores"), ("POST", "/x"), ("GET", "/metrics")]:
        assert open_.required(method, path) == Level.NONE
    assert open_.grant(None) == Level.NONE and open_.grant("") == Level.NONE
    assert open_.grant(READ) == Level.NONE  # no token configured: nothing to match
    assert open_.peer_headers() == {}


def test_levels_by_route_and_method():
    assert BOTH.required("GET", "/api/stores") == Level.READ
    assert BOTH.required("HEAD", "/") == Level.READ
    assert BOTH.required("GET", "/metrics") == Level.READ
    assert BOTH.required("POST", "/api/stores") == Level.ADMIN
    assert BOTH.required("DELETE", "/anything") == Level.ADMIN
    for probe in ("/health", "/ready", "/login"):
        assert BOTH.required("GET", probe) == Level.NONE
    # only a read token: a change never needs less than a read
    assert Access(READ).required("POST", "/x") == Level.READ
    # only an admin token: reads stay open, changes need it
    assert Access(admin_token=ADMIN).required("GET", "/api/stores") == Level.NONE
    assert Access(admin_token=ADMIN).required("POST", "/x") == Level.ADMIN


def test_grant():
    assert BOTH.grant(READ) == Level.READ
    assert BOTH.grant(ADMIN) == Level.ADMIN
    for wrong in (None, "", READ[:-1], READ + "x", ADMIN.upper(), "x" * 500):
        assert BOTH.grant(wrong) == Level.NONE, wrong
    assert Access(READ).grant(ADMIN) == Level.NONE


def test_every_token_is_compared_in_constant_time(monkeypatch):
    """hmac.compare_digest on equal-length digests, once per token, match or not."""
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    for presented in (READ, ADMIN, "wrong-wrong-wrong-wrong", None):
        calls.clear()
        BOTH.grant(presented)
        assert calls == [(32, 32), (32, 32)], presented  # no early exit, no length leak


def test_peer_headers_carry_the_read_token():
    assert BOTH.peer_headers() == {"Authorization": f"Bearer {READ}"}
    assert Access(admin_token=ADMIN).peer_headers() == {}  # reads are open then


def test_bearer():
    assert bearer(f"Bearer {READ}") == READ
    assert bearer(f"bearer   {READ} ") == READ
    for bad in (None, "", "Bearer", "Bearer  ", f"Basic {READ}", READ):
        assert bearer(bad) is None, bad


def test_session_cookie():
    assert session_cookie(READ, secure=False) == (
        f"orderstats_token={READ}; Path=/; HttpOnly; SameSite=Strict")
    assert session_cookie(READ, secure=True).endswith("; Secure")


@pytest.mark.parametrize("target,expected", [
    ("/?store=s-1&range=6h", "/?store=s-1&range=6h"), ("/", "/"), (None, "/"), ("", "/"),
    ("//evil.example/", "/"), ("https://evil.example/", "/"), ("/\\evil.example", "/"),
    ("evil", "/"), ("/\r\nSet-Cookie: x=1", "/")])
def test_safe_next(target, expected):
    assert safe_next(target) == expected


def test_cors():
    off = Cors.from_env({})
    assert off.origins == frozenset() and off.headers("https://a.example") == {}
    assert off.preflight("https://a.example") is None
    on = Cors.from_env({"ORDERSTATS_CORS_ORIGINS": " https://A.example/ ,http://127.0.0.1:8080"})
    assert on.origins == {"https://a.example", "http://127.0.0.1:8080"}
    assert on.headers("https://a.example") == {
        "Access-Control-Allow-Origin": "https://a.example", "Vary": "Origin"}
    assert on.headers("https://b.example") == {"Vary": "Origin"}
    assert on.headers(None) == {"Vary": "Origin"}
    pre = on.preflight("http://127.0.0.1:8080")
    assert pre["Access-Control-Allow-Methods"] == "GET, HEAD"
    assert pre["Access-Control-Allow-Headers"] == "Authorization"
    assert on.preflight("http://127.0.0.1:8081") is None
    with pytest.raises(ValueError, match="ORDERSTATS_CORS_ORIGINS: '\\*' is not an origin"):
        Cors.from_env({"ORDERSTATS_CORS_ORIGINS": "*"})


SECRETS = {"ORDERSTATS_API_READ_TOKEN": READ, "ORDERSTATS_API_ADMIN_TOKEN": ADMIN,
           "ORDERSTATS_SECURITY_PROTOCOL": "SASL_SSL", "ORDERSTATS_SASL_MECHANISM": "PLAIN",
           "ORDERSTATS_SASL_USERNAME": "user", "ORDERSTATS_SASL_PASSWORD": "pw-0123456789abc"}


def test_settings_read_the_tokens_and_never_show_them():
    s = Settings.from_env(SECRETS)
    assert s.access == Access(READ, ADMIN)
    for text in (repr(s), str(s), repr(s.access), repr(s.security)):
        for secret in (READ, ADMIN, "pw-0123456789abc"):
            assert secret not in text


@pytest.mark.parametrize("name", ["ORDERSTATS_API_READ_TOKEN", "ORDERSTATS_API_ADMIN_TOKEN"])
@pytest.mark.parametrize("bad", ["short-secret", "has a space in it 0123", "semi;colon-0123456789"])
def test_a_bad_token_is_refused_without_being_shown(name, bad):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({**SECRETS, name: bad})
    assert name in str(err.value) and "not shown" in str(err.value)
    for secret in (bad, READ, ADMIN, "pw-0123456789abc"):
        assert secret not in str(err.value)


def test_the_gateway_takes_the_admin_token_as_a_key_for_every_store():
    ring = KeyRing.load(text=f"{hash_key('store-key-1')} s-1", admin_token=ADMIN)
    assert ring.configured
    assert ring.authenticate(ADMIN).name == "admin-token"
    assert ring.authenticate(ADMIN).may_submit("any-store")
    assert ring.authenticate(READ) is None
    assert ring.authenticate("store-key-1").stores == {"s-1"}
    only_token = KeyRing.load(admin_token=ADMIN)
    assert only_token.configured and only_token.authenticate(None) is None


def test_the_api_description_says_who_needs_what():
    import importlib.resources
    import json

    from app.access import OPEN_PATHS
    from app.web.routes import ROUTES

    doc = json.loads((importlib.resources.files("app.web") / "openapi.json").read_text())
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "cookie"}
    assert doc["components"]["securitySchemes"]["cookie"]["name"] == "orderstats_token"
    assert {} in doc["security"]  # unset tokens: open
    for path in ROUTES:
        op = doc["paths"][path.replace("{path:.+}", "{path}")]["get"]
        if path in OPEN_PATHS:
            assert op["security"] == [], path
        else:
            assert "401" in op["responses"], path
    assert {"get", "post"} <= set(doc["paths"]["/login"])
