"""The operators' metrics that need no broker: labels stay bounded, the web timing wrapper,
the changelog counter and the RocksDB key estimate."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import rocksdict

from app import metrics
from app.web.routes import ROUTES, timed
from tables.store import PartitionStore


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_dead_letter_reasons_are_classed_by_the_field_they_name():
    r = metrics.reason_class
    assert r("items[0].qty must be between 1 and 1000000, got 0") == "items.qty"
    assert r("items[12].sku must be a non-empty string") == "items.sku"
    assert r("store_id must be a non-empty string") == "store_id"
    assert r("created_at 'yesterday' is not an ISO-8601 time with offset: bad") == "created_at"
    assert r("payload.amount must be a decimal number") == "payload.amount"
    assert r("not valid UTF-8 JSON: unexpected character") == "json"
    assert r("the Kafka record has no timestamp (the event time)") == "record_timestamp"
    assert r("the record timestamp 9 (epoch ms) is outside") == "record_timestamp"
    assert r("event is 2000000 bytes, more than 1048576") == "event"
    assert r("") == r("   ") == r("'quoted' text") == r("{weird} x") == "other"
    assert len(r("x" * 500)) <= 64 or r("x" * 500) == "other"


def test_timed_views_record_the_route_template_and_the_status():
    class View:
        async def dispatch(self, request):
            if request == "boom":
                raise RuntimeError(request)
            return SimpleNamespace(status=404 if request == "missing" else 200)

    route = "/api/stores/{store_id}"
    assert route in ROUTES
    view = timed(View, route)
    assert view.__name__ == "View" and issubclass(view, View)
    before = {s: sample("orderstats_web_request_seconds_count", {"route": route, "status": s})
              for s in ("200", "404", "500")}
    asyncio.run(view().dispatch("ok"))
    asyncio.run(view().dispatch("missing"))
    try:
        asyncio.run(view().dispatch("boom"))
    except RuntimeError:
        pass
    for status in ("200", "404", "500"):
        assert sample("orderstats_web_request_seconds_count",
                      {"route": route, "status": status}) == before[status] + 1


class FakeFuture:
    def __init__(self, offset: int) -> None:
        self.offset = offset

    def add_done_callback(self, callback) -> None:
        pass


def test_changelog_records_are_counted_per_table_once_per_write(tmp_path):
    db = rocksdict.Rdict(str(tmp_path / "p0"), options=rocksdict.Options(raw_mode=True))
    sent = []

    async def send(topic, key, value, partition, timestamp, headers):
        sent.append(key)
        return FakeFuture(len(sent))

    table = SimpleNamespace(
        name="totals-test",
        changelog_topic=SimpleNamespace(get_topic_name=lambda: "orderstats-totals-changelog"),
        data=SimpleNamespace(_db_for_partition=lambda p: db, _dbs={0: db}))
    store = PartitionStore(SimpleNamespace(producer=SimpleNamespace(send=send)), table)
    before = sample("orderstats_changelog_records_total", {"table": "totals-test"})
    n = asyncio.run(store.write(0, [("s-1", [1, 2]), ("s-2", [3, 4]), ("s-3", [5, 6])]))
    assert n == 3 == len(sent)
    assert store.estimated_keys() == 3  # RocksDB's estimate: exact while only put
    assert asyncio.run(store.write(0, [("s-3", None)])) == 1  # a delete is a record too
    assert sample("orderstats_changelog_records_total", {"table": "totals-test"}) == before + 4
    assert asyncio.run(store.write(0, [])) == 0
    assert sample("orderstats_changelog_records_total", {"table": "totals-test"}) == before + 4
    assert store.estimated_keys() == 2
    db.close()


def test_estimated_keys_skips_a_partition_that_fails():
    class Broken:
        def property_int_value(self, name):
            raise RuntimeError("closed")

    class Five:
        def property_int_value(self, name):
            assert name == "rocksdb.estimate-num-keys"
            return 5

    table = SimpleNamespace(name="t", data=SimpleNamespace(_dbs={0: Broken(), 1: Five()}))
    assert PartitionStore(None, table).estimated_keys() == 5


def test_a_scrape_refreshes_lag_per_active_partition_recovery_and_table_sizes():
    from faust.types import TP

    from app.settings import Settings
    from app.web.cluster import Cluster
    from tables.schema import PROGRESS, changelog_topic

    settings = Settings()
    done = asyncio.Event()
    actives = {TP("orders", 0), TP("orders", 3)}
    app = SimpleNamespace(
        conf=SimpleNamespace(id="orderstats", canonical_url="http://w-0:6066"),
        assignor=SimpleNamespace(
            assigned_actives=lambda: actives,
            assigned_standbys=lambda: {TP(changelog_topic("orderstats", PROGRESS), 5)}),
        consumer=SimpleNamespace(highwater=lambda tp: {0: 100, 3: 10}[tp.partition],
                                 assignment=lambda: actives),
        in_recovery=False, rebalancing=False,
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=done)))

    class Sized:
        def __init__(self, name, n):
            self.table, self.n = SimpleNamespace(name=name), n

        def estimated_keys(self):
            return self.n

        def memory_bytes(self):
            return {"memtables": self.n, "table_readers": 1, "block_cache": 5 + self.n}

    reader = SimpleNamespace(
        progress=lambda ps: {0: [89, 0], 3: [9, 0], 5: [40, 0]},
        tables=SimpleNamespace(all=(Sized("windows-t", 7), Sized("totals-t", 3))))
    cluster = Cluster(app, settings, routing=None)
    metrics.CONSUMER_LAG.labels("99").set(5)  # a partition revoked since: dropped
    cluster.refresh_metrics(reader)
    assert sample("orderstats_consumer_lag", {"partition": "0"}) == 10  # 100 - (89 + 1)
    assert sample("orderstats_consumer_lag", {"partition": "3"}) == 0
    assert metrics.REGISTRY.get_sample_value("orderstats_consumer_lag",
                                             {"partition": "5"}) is None  # standby
    assert metrics.REGISTRY.get_sample_value("orderstats_consumer_lag",
                                             {"partition": "99"}) is None
    assert sample("orderstats_recovering") == 1
    assert sample("orderstats_table_keys", {"table": "windows-t"}) == 7
    # memtables and table readers summed over the tables; the shared block cache once
    assert sample("orderstats_rocksdb_memory_bytes", {"kind": "memtables"}) == 10
    assert sample("orderstats_rocksdb_memory_bytes", {"kind": "table_readers"}) == 2
    assert sample("orderstats_rocksdb_memory_bytes", {"kind": "block_cache"}) == 12
    done.set()
    cluster.refresh_metrics(reader)
    assert sample("orderstats_recovering") == 0


def test_the_worker_web_server_times_every_route_by_template_and_refreshes_at_scrape():
    import faust
    from aiohttp.test_utils import TestClient, TestServer

    from app.settings import Settings
    from app.web.routes import register_views
    from app.web.window_view import WindowChoice
    from tables.windows import NO_ROLLUPS, TumblingWindows

    class NotReady:
        scrapes = 0

        def self_url(self):
            return "http://127.0.0.1:6066"

        def ready(self):
            return False

        def active_partitions(self):
            return []

        def refresh_metrics(self, reader):
            NotReady.scrapes += 1

    def count(route: str, status: str) -> float:
        return sample("orderstats_web_request_seconds_count", {"route": route, "status": status})

    async def scenario() -> dict[str, int]:
        app = faust.App("metrics-unit", broker="memory://", store="memory://")
        reader = SimpleNamespace(choice=WindowChoice(TumblingWindows(60, 3600), NO_ROLLUPS))
        register_views(app, reader, NotReady(), Settings())
        client = TestClient(TestServer(app.web.web_app))
        await client.start_server()
        try:
            return {path: (await client.get(path)).status
                    for path in ("/health", "/ready", "/metrics", "/api/stores/s-1")}
        finally:
            await client.close()

    before = (count("/health", "200"), count("/ready", "503"),
              count("/api/stores/{store_id}", "503"))
    statuses = asyncio.run(scenario())
    assert statuses == {"/health": 200, "/ready": 503, "/metrics": 200,
                        "/api/stores/s-1": 503}
    assert (count("/health", "200"), count("/ready", "503"),
            count("/api/stores/{store_id}", "503")) == tuple(b + 1 for b in before)
    assert NotReady.scrapes == 1


def test_dead_letters_are_counted_by_reason_class_once_acked():
    from agents.batch import BatchUnit, Topics

    sent = []

    async def send(topic, key, value, partition, timestamp, headers):
        sent.append((topic, dict(headers)["orderstats.reason"]))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def event(offset):
        return SimpleNamespace(message=SimpleNamespace(
            key=b"k", value=b"{}", headers=None, topic="orders", partition=0, offset=offset,
            timestamp=None))

    unit = BatchUnit(SimpleNamespace(), send, Topics("rep", "dlq"), None, None)
    plan = SimpleNamespace(partition=0, state=SimpleNamespace(lettered=None, dlq_next=-1),
                           forward=[], invalid=[
        (event(1), "items[0].qty must be between 1 and 1000000, got 0"),
        (event(2), "items[3].qty must be between 1 and 1000000, got -1"),
        (event(3), "not valid UTF-8 JSON: oops")])
    before = {c: sample("orderstats_dead_letters_total", {"reason": c})
              for c in ("items.qty", "json")}
    asyncio.run(unit._send_on(plan))
    assert [t for t, _ in sent] == ["dlq"] * 3
    assert sample("orderstats_dead_letters_total", {"reason": "items.qty"}) == \
        before["items.qty"] + 2
    assert sample("orderstats_dead_letters_total", {"reason": "json"}) == before["json"] + 1
