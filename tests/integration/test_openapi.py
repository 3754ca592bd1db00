"""Real answers, success and error, match the OpenAPI description served at
/api/openapi.json; unknown routes answer the JSON error shape with 404."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from app.web.routes import ROUTES
from tests.support import Deployment, assert_matches_truth

pytestmark = pytest.mark.kafka

SPEC_URI = "urn:orderstats:openapi"


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


class Spec:
    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self.registry = Registry().with_resource(
            SPEC_URI, Resource.from_contents(doc, default_specification=DRAFT202012))

    def resolve(self, node: dict) -> dict:
        while "$ref" in node:
            node = self.registry.resolver(SPEC_URI).lookup(SPEC_URI + node["$ref"]).contents
        return node

    def check(self, template: str, status: int, headers: dict[str, str], body: bytes) -> None:
        responses = self.doc["paths"][template]["get"]["responses"]
        assert str(status) in responses, (template, status, body[:200])
        response = self.resolve(responses[str(status)])
        ctype = headers.get("Content-Type", "").split(";")[0]
        assert ctype in response["content"], (template, status, ctype)
        schema = {"$ref": SPEC_URI + response["content"][ctype]["schema"]["$ref"]} \
            if "$ref" in response["content"][ctype]["schema"] \
            else response["content"][ctype]["schema"]
        Draft202012Validator(schema, registry=self.registry).validate(orjson.loads(body))


def test_answers_match_the_description(deployment: Deployment, tmp_path):
    truth = deployment.generate(tmp_path / "t.json", "--count", "600", "--stores", "6",
                                "--rate", "0", "--span", "600")
    worker = deployment.worker()
    worker.wait_ready()
    assert_matches_truth(worker.url, truth)

    status, headers, raw = get(worker.url + "/api/openapi.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    doc = orjson.loads(raw)
    assert doc["openapi"].startswith("3.")
    # every route served is described, with its path parameters
    described = {p.replace("{path}", "{path:.+}") for p in doc["paths"]}
    assert set(ROUTES) <= described, set(ROUTES) - described
    spec = Spec(doc)
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)

    store = orjson.loads(get(worker.url + "/api/stores?limit=1")[2])["stores"][0]["store_id"]
    cases = [
        ("/api/stores/{store_id}", f"/api/stores/{store}?limit=5", 200),
        ("/api/stores/{store_id}", "/api/stores/never-seen", 404),
        ("/api/stores/{store_id}", f"/api/stores/{store}?limit=abc", 400),
        ("/api/stores/{store_id}/windows",
         f"/api/stores/{store}/windows?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z", 200),
        ("/api/stores/{store_id}/windows", f"/api/stores/{store}/windows", 400),
        ("/api/stores", "/api/stores?sort=revenue&limit=100", 200),
        ("/api/stores", "/api/stores?sort=bogus", 400),
        ("/api/stores", "/api/stores?limit=0", 400),
        ("/api/_local/stores", "/api/_local/stores", 200),
        ("/api/_local/status", "/api/_local/status", 200),
        ("/api/cluster", "/api/cluster", 200),
        ("/api/live", "/api/live?top=5", 200),
        ("/api/live", "/api/live?top=0", 400),
        ("/ready", "/ready", 200),
        ("/health", "/health", 200),
    ]
    for template, path, expected in cases:
        status, headers, body = get(worker.url + path)
        assert status == expected, (path, status, body[:300])
        spec.check(template, status, headers, body)

    # several currencies: revenue null with revenue_by_currency a map, as described
    window = {"$ref": SPEC_URI + "#/components/schemas/Totals"}
    Draft202012Validator(window, registry=spec.registry).validate(
        {"orders": 2, "revenue": None, "revenue_by_currency": {"EUR": 100, "JPY": 7},
         "items": 3, "late": 0})

    # unknown routes: the JSON error shape, 404 (any template's 404 schema is Error)
    for path in ("/nope", "/api/nope", "/api/stores/s-0001/nope/deeper", "/static",
                 "/api/_local"):
        status, headers, body = get(worker.url + path)
        assert status == 404, (path, status, body[:200])
        spec.check("/api/cluster", status, headers, body)
        assert orjson.loads(body)["error"]["code"] == "not_found"
    # a route that exists, another method: the same shape, 405 with Allow
    request = urllib.request.Request(worker.url + "/api/stores", data=b"{}", method="POST")
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("POST /api/stores answered 2xx")
    except urllib.error.HTTPError as exc:
        assert exc.code == 405 and "GET" in exc.headers["Allow"]
        assert orjson.loads(exc.read())["error"]["code"] == "method_not_allowed"
