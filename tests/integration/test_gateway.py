"""The gateway on the real broker: gateway -> worker -> API exact; 503 while Kafka is away
and nothing acknowledged lost; dead letters redriven after a mapping fix, counted once."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from agents.routing import KeyRouting
from app.cli.order_generator import GroundTruth
from app.kafka.clients import Connection
from app.kafka.dlq import ledger_topic
from app.kafka.topics import ensure_topic
from app.timefmt import format_iso_ms
from tests.kafka_proxy import KafkaProxy
from tests.support import (ORDERSTATS, Deployment, assert_matches_truth, free_port, http_json,
                           wait_for)
from tests.worker_process import read_records, stop_process

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

KEY_A, KEY_B, ADMIN = "test-key-a-7c1f", "test-key-b-9e2d", "test-admin-key-51aa"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Gateway:
    """An ``orderstats gateway`` child process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([ORDERSTATS, "gateway", "--port", str(self.port)],
                                         env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def ready(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        try:
            return http_json(self.url + "/ready", timeout=2)[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        wait_for(self.ready, timeout, interval=0.2, what="gateway ready")

    def stop(self) -> None:
        stop_process(self.proc)


def order(oid: str, store: str, created_ms: int, qty: int = 2, price: int = 150,
          store_field: str = "store_id") -> dict:
    return {"order_id": oid, store_field: store, "created_at": format_iso_ms(created_ms),
            "items": [{"sku": "A-1", "qty": qty, "unit_price": price}], "total": qty * price,
            "currency": "JPY"}


def ndjson(*docs: dict | bytes) -> bytes:
    return b"\n".join(d if isinstance(d, bytes) else orjson.dumps(d) for d in docs) + b"\n"


async def post(url: str, body: bytes, key: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        async with s.post(url, data=body, headers=headers) as resp:
            return resp.status, await resp.json()


def posted(url: str, body: bytes, key: str | None = None) -> tuple[int, dict]:
    return asyncio.run(post(url, body, key))



def test_gateway_to_worker_exact_for_a_mixed_batch(deployment: Deployment, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"# store keys\n{sha(KEY_A)} s-a1,s-a2\n{sha(KEY_B)} s-b\n")
    env = {**deployment.env, "ORDERSTATS_GATEWAY_KEYS_FILE": str(keys),
           "ORDERSTATS_GATEWAY_ADMIN_KEY_SHA256": sha(ADMIN)}
    worker = deployment.worker()
    gw = Gateway(env, tmp_path / "gateway.log")
    try:
        gw.wait_ready()
        worker.wait_ready()
        now = int(time.time() * 1000)
        truth = GroundTruth(60)
        counted: set[str] = set()

        def expect(doc: dict) -> None:  # what the workers must count (once per order id)
            if doc["order_id"] not in counted:
                counted.add(doc["order_id"])
                truth.add(doc["store_id"], now - doc["age"], doc["total"],
                          doc["items"][0]["qty"], False)

        docs = [{**order(f"o-{i}", f"s-a{1 + i % 2}", now - i * 7_000, qty=1 + i % 3),
                 "age": i * 7_000} for i in range(40)]
        batch = [*docs[:20], b"{not json", {**docs[0]}, {"order_id": "x", "store_id": "s-a1"},
                 *docs[20:]]  # an invalid line, a duplicate order id, another invalid line
        status, body = posted(gw.url + "/orders/batch",
                              ndjson(*[{k: v for k, v in d.items() if k != "age"}
                                       if isinstance(d, dict) else d for d in batch]), KEY_A)
        assert status == 400, body
        assert body["error"]["code"] == "invalid_orders"
        assert [i["line"] for i in body["error"]["items"]] == [21, 23]
        assert body["accepted"] == [d["order_id"] for d in docs[:20]] + ["o-0"] + \
            [d["order_id"] for d in docs[20:]]
        for d in docs:
            expect(d)

        # Another store's order under key A: 403, and nothing of that request is produced.
        other = order("o-b-sneaky", "s-b", now)
        status, body = posted(gw.url + "/orders/batch",
                              ndjson(order("o-a-with-b", "s-a1", now), other), KEY_A)
        assert status == 403 and body["error"]["code"] == "forbidden", body
        assert posted(gw.url + "/orders", orjson.dumps(other), None)[0] == 401
        assert posted(gw.url + "/orders", orjson.dumps(other), "not-a-key")[0] == 401

        # Key B for its store; the admin key for any store; a duplicate across requests.
        b1 = {**order("o-b-1", "s-b", now - 1000, qty=3), "age": 1000}
        status, body = posted(gw.url + "/orders", orjson.dumps(
            {k: v for k, v in b1.items() if k != "age"}), KEY_B)
        assert (status, body) == (202, {"accepted": ["o-b-1"], "count": 1})
        expect(b1)
        c1 = {**order("o-c-1", "s-c", now - 2000), "age": 2000}
        plain = {k: v for k, v in c1.items() if k != "age"}
        assert posted(gw.url + "/orders/batch", ndjson(plain, plain), ADMIN)[0] == 202
        assert posted(gw.url + "/orders", orjson.dumps(plain), ADMIN)[0] == 202
        expect(c1)

        assert_matches_truth(worker.url, truth.to_json())
        status, _ = http_json(worker.url + "/api/stores/s-b")
        assert status == 200  # s-b exists only through key B's order, not the 403 one
        _, sb = http_json(worker.url + "/api/stores/s-b")
        assert sb["totals"]["orders"] == 1
        # Every record took the workers' direct path (keyed and partitioned by store).
        assert worker.metric("orderstats_repartitioned_total") == 0
        assert worker.metric('orderstats_events_total{outcome="duplicate"}') == 3
        metrics = urlopen_text(gw.url + "/metrics")
        assert "orderstats_gateway_orders_accepted_total 45.0" in metrics
        assert 'orderstats_gateway_orders_rejected_total{reason="forbidden"} 2.0' in metrics
        log = gw.log.read_text()
        for secret in (KEY_A, KEY_B, ADMIN, "not-a-key"):
            assert secret not in log and secret not in metrics
    finally:
        gw.stop()


def urlopen_text(url: str) -> str:
    import urllib.request
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def test_503_while_kafka_is_unreachable_then_202_and_nothing_acknowledged_lost(
        deployment: Deployment, tmp_path):
    conn = Connection(deployment.broker)
    partitions = asyncio.run(ensure_topic(conn, deployment.topic, deployment.partitions))
    proxy = KafkaProxy(int(deployment.broker.rsplit(":", 1)[1])).start()
    env = {**deployment.env, "ORDERSTATS_BROKER": proxy.url,
           "ORDERSTATS_GATEWAY_PRODUCE_TIMEOUT_S": "2"}
    gw = Gateway(env, tmp_path / "gateway.log")
    acked: list[str] = []
    answers: list[tuple[float, str, int]] = []  # (time, phase, status)

    async def client(phase: dict, stop: asyncio.Event, n: list[int]) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
            while not stop.is_set():
                n[0] += 1
                docs = [order(f"p-{n[0]}-{j}", f"s-{(n[0] + j) % 13}", int(time.time() * 1000))
                        for j in range(1 + n[0] % 3)]
                async with s.post(gw.url + "/orders/batch", data=ndjson(*docs)) as resp:
                    body = await resp.json()
                    answers.append((time.monotonic(), phase["name"], resp.status))
                    if resp.status == 202:
                        acked.extend(body["accepted"])
                    else:
                        assert resp.status == 503, body
                        assert resp.headers["Retry-After"] and \
                            body["error"]["code"] == "kafka_unavailable"
                        acked.extend(body["accepted"])  # stored before Kafka went
                await asyncio.sleep(0.02)

    async def scenario() -> dict[str, float]:
        phase, stop, n = {"name": "before"}, asyncio.Event(), [0]
        tasks = [asyncio.create_task(client(phase, stop, n)) for _ in range(4)]
        marks: dict[str, float] = {}
        await asyncio.sleep(2)
        proxy.cut()
        phase["name"], marks["cut"] = "cut", time.monotonic()
        await asyncio.sleep(6)
        status, _ = await asyncio.to_thread(http_json, gw.url + "/ready")
        marks["ready_during_cut"] = status
        proxy.restore()
        phase["name"], marks["restored"] = "restored", time.monotonic()
        await asyncio.sleep(8)
        stop.set()
        await asyncio.gather(*tasks)
        return marks

    try:
        gw.wait_ready()
        marks = asyncio.run(scenario())
        assert marks["ready_during_cut"] == 503
        before = [s for _, p, s in answers if p == "before"]
        assert before and set(before) == {202}
        cut = [(t - marks["cut"], s) for t, p, s in answers if p == "cut"]
        assert any(s == 503 for _, s in cut)
        assert all(s == 503 for t, s in cut if t > 3)  # unreachable: 503, never a 202
        back = [t - marks["restored"] for t, p, s in answers if p == "restored" and s == 202]
        assert back, "no 202 after the broker came back"
        print(f"\nfirst 202 {back[0]:.1f}s after the broker came back; "
              f"{len(acked)} acknowledged orders")
        assert back[0] < 6
        records = read_records(deployment.broker, deployment.topic)
        in_topic = {orjson.loads(r.value)["order_id"] for r in records}
        assert set(acked) <= in_topic, f"lost: {sorted(set(acked) - in_topic)[:10]}"
        routing = KeyRouting("raw", partitions)
        for r in records:
            store = orjson.loads(r.value)["store_id"]
            assert r.key == store.encode() and r.partition == routing.partition(store)
    finally:
        gw.stop()
        proxy.stop()


def test_redrive_after_fixing_the_mapping_counts_once_also_twice(deployment: Deployment,
                                                                  tmp_path):
    """Events with ``shop`` instead of ``store_id`` are dead-lettered by the default mapping;
    after the fix (ORDERSTATS_FIELD_STORE_ID=shop) a redrive counts them, once, however
    often it runs."""
    conn = Connection(deployment.broker)
    asyncio.run(ensure_topic(conn, deployment.topic, deployment.partitions))
    now = int(time.time() * 1000)
    truth = GroundTruth(60)
    records: list[bytes] = []
    for i in range(300):  # the default mapping counts these
        doc = order(f"ok-{i}", f"s-{i % 5}", now - i * 3000)
        records.append(orjson.dumps(doc))
        truth.add(doc["store_id"], now - i * 3000, doc["total"], 2, False)
    fixed = []
    for i in range(120):  # refused until the mapping names "shop"
        doc = order(f"shop-{i}", f"s-{i % 7}", now - i * 5000, qty=1, store_field="shop")
        records.append(orjson.dumps(doc))
        fixed.append(doc)
    records += [b"\xff{not json", orjson.dumps({"order_id": "neg", "shop": "s-1",
                                                "created_at": format_iso_ms(now),
                                                "items": [], "total": -5})]
    asyncio.run(produce_plain(deployment.broker, deployment.topic, records))

    w1 = deployment.worker(1)
    w1.wait_ready()
    wait_for(lambda: w1.metric('orderstats_events_total{outcome="invalid"}') == 122, 120,
             what="122 dead letters")
    assert_matches_truth(w1.url, truth.to_json())
    stats = deployment.run("dlq", "stats", "--json")
    summary = orjson.loads(stats.stdout)
    assert summary["dead_letters"] == 122 and summary["redriven"] == 0
    assert summary["by_reason"]["store_id must be a non-empty string"] == 121  # + "neg"
    shown = deployment.run("dlq", "show", "--reason", "json", "--limit", "5").stdout
    assert "\\xff{not json" in shown and "orderstats.source.offset" in shown
    w1.stop()

    fix = {"ORDERSTATS_FIELD_STORE_ID": "shop"}
    w2 = deployment.worker(1, **fix)  # the same data dir and group, the corrected mapping
    w2.wait_ready()
    dry = run_with(deployment, fix, "dlq", "redrive", "--dry-run")
    assert "would redrive: 120" in dry and "still invalid (skipped): 2" in dry
    first = run_with(deployment, fix, "dlq", "redrive")
    assert "redriven: 120 " in first and "still invalid (skipped): 2" in first, first
    second = run_with(deployment, fix, "dlq", "redrive")
    assert "redriven: 0 " in second and "already redriven (skipped): 120" in second, second
    for doc in fixed:
        truth.add(doc["shop"], parse_ms(doc["created_at"]), doc["total"], 1, False)
    assert_matches_truth(w2.url, truth.to_json())
    time.sleep(3)  # nothing more arrives later
    assert_matches_truth(w2.url, truth.to_json(), timeout=5)
    assert w2.metric("orderstats_repartitioned_total") == 0

    # The redriven records say where they came from; the ledger holds one record each.
    redriven = [r for r in read_records(deployment.broker, deployment.topic)
                if any(k == "orderstats.redrive.origin" for k, _ in r.headers)]
    assert len(redriven) == 120
    origins = {dict(r.headers)["orderstats.redrive.origin"].decode() for r in redriven}
    assert len(origins) == 120 and all(o.startswith(deployment.topic + "/") for o in origins)
    ledger = read_records(deployment.broker, ledger_topic(deployment.group))
    assert len(ledger) == 120
    assert orjson.loads(deployment.run("dlq", "stats", "--json").stdout)["redriven"] == 120


def parse_ms(text: str) -> int:
    from app.timefmt import parse_iso_ms
    return parse_iso_ms(text)


def run_with(dep: Deployment, extra: dict[str, str], *args: str) -> str:
    proc = subprocess.run([ORDERSTATS, *args], env={**dep.env, **extra}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


async def produce_plain(broker: str, topic: str, values: list[bytes]) -> None:
    from app.kafka.clients import producer
    async with producer(Connection(broker)) as client:
        futures = [await client.send(topic, value=v) for v in values]  # no key: any path
        await asyncio.gather(*futures)
