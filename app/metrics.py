"""Prometheus metrics of the stream job (served at /metrics)."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS = Counter("orderstats_events", "Order events by outcome: counted, late, duplicate, "
                 "invalid (sent to the dead-letter topic) or replayed (already applied)",
                 ["outcome"], registry=REGISTRY)
BATCH_SECONDS = Histogram("orderstats_batch_seconds", "Time to apply one batch to the tables",
                          registry=REGISTRY,
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
BATCH_EVENTS = Histogram("orderstats_batch_events", "Events per batch", registry=REGISTRY,
                         buckets=(1, 10, 100, 1000, 5000, 10000, 50000))
WATERMARK = Gauge("orderstats_watermark_seconds", "Highest created_at seen, per partition",
                  ["partition"], registry=REGISTRY)
TOTAL_MISMATCH = Counter("orderstats_total_mismatch", "Counted orders whose total differs from "
                         "the sum of their items' qty x unit_price (discounts, shipping, tax): "
                         "counted as sent, the total is authoritative", registry=REGISTRY)
WINDOWS_EXPIRED = Counter("orderstats_windows_expired", "Windows deleted past the retention",
                          registry=REGISTRY)
FIRST_BATCH = Gauge("orderstats_first_batch_started_seconds", "Wall-clock time this worker "
                    "started its first batch (0 before); the benchmark times from it",
                    registry=REGISTRY)
LAST_BATCH = Gauge("orderstats_last_batch_finished_seconds", "Wall-clock time this worker "
                   "finished applying its latest batch (0 before); the benchmark's "
                   "last record processed", registry=REGISTRY)
REREADS = Counter("orderstats_rereads", "Partitions re-read from the next expected offset "
                  "because fetched records were dropped before reaching the agent "
                  "(a rebalance race); nothing is lost, the re-read replaces them",
                  registry=REGISTRY)
LOST_OFFSETS = Counter("orderstats_lost_offsets", "Offsets deleted from the log (retention, "
                       "delete-records) before this worker counted them: orders missing from "
                       "the statistics", ["topic", "partition"], registry=REGISTRY)
REPARTITIONED = Counter("orderstats_repartitioned", "Orders forwarded to the repartition "
                        "topic because their key or partition did not match their store "
                        "(no key, another key format, another partitioner)", registry=REGISTRY)
CONSUMER_LAG = Gauge("orderstats_consumer_lag", "Records of the orders topic not yet applied, "
                     "per active partition: the consumer's highwater - (last applied offset "
                     "+ 1) (refreshed at each scrape of /metrics)", ["partition"],
                     registry=REGISTRY)
DEAD_LETTERS = Counter("orderstats_dead_letters", "Events sent to the dead-letter topic, by "
                       "a short class of the reason (the field it names, e.g. store_id, "
                       "created_at, items.sku; json; event; other)", ["reason"],
                       registry=REGISTRY)
TABLE_KEYS = Gauge("orderstats_table_keys", "Keys in this worker's RocksDB, per table, over "
                   "its open partitions (RocksDB's rocksdb.estimate-num-keys; refreshed at "
                   "each scrape)", ["table"], registry=REGISTRY)
ROCKSDB_MEMORY = Gauge("orderstats_rocksdb_memory_bytes", "RocksDB's memory on this worker "
                       "by kind: memtables and table readers summed over its open partitions, "
                       "the shared block cache's usage (memtables are charged to it too)",
                       ["kind"], registry=REGISTRY)
CHANGELOG_RECORDS = Counter("orderstats_changelog_records", "Records sent to the tables' "
                            "changelog topics, per table", ["table"], registry=REGISTRY)
KAFKA_UP = Gauge("orderstats_kafka_up", "1 while this worker reaches a Kafka broker (a "
                 "connection probe every 2 s, app/kafka/liveness.py), else 0; /ready is 503 "
                 "while it is 0", registry=REGISTRY)
CHANGELOG_RESTORED = Counter("orderstats_changelog_restored", "Changelog records (all "
                             "tables) read into this worker's tables, per role and partition: "
                             "active (recovering a partition before serving it: a new owner "
                             "that held a standby copy reads only the tail it missed, one "
                             "without reads the whole changelog) or standby (keeping standby "
                             "copies current)", ["role", "partition"], registry=REGISTRY)
WINDOW_RESULTS = Counter("orderstats_window_results", "Closed windows published to the "
                         "window-results topic (republished revisions included), by size",
                         ["window"], registry=REGISTRY)
AFTER_CLOSE = Counter("orderstats_orders_after_close", "Orders counted into a window after it "
                      "was closed and published: each re-publishes the window with its next "
                      "revision", ["window"], registry=REGISTRY)
OPEN_WINDOWS = Gauge("orderstats_open_windows", "Windows not closed yet on this worker's "
                     "partitions (what the close rules still wait for)", registry=REGISTRY)
RECOVERING = Gauge("orderstats_recovering", "1 while this worker recovers its tables from "
                   "the changelogs, else 0 (refreshed at each scrape)", registry=REGISTRY)
WEB_REQUESTS = Histogram("orderstats_web_request_seconds", "Time to answer an HTTP request, by "
                         "route template and status (/api/stream: the stream's lifetime)",
                         ["route", "status"], registry=REGISTRY,
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                  2.5, 5, 10))

_INDEX = re.compile(r"\[\d+\]")
_FIELD = re.compile(r"[A-Za-z_][\w.-]{0,63}")
_LEADS = {"not": "json", "the": "record_timestamp"}  # "not valid UTF-8 JSON", "the ... record"


def reason_class(reason: str) -> str:
    """A short, bounded label for a dead-letter reason: the field it names, not the text.

    The reasons start with the field (``store_id must be ...``, ``items[3].sku ...``,
    ``created_at is not ...``); indexes are dropped so the classes stay few.
    """
    word = _INDEX.sub("", reason.split(None, 1)[0].split(":", 1)[0]) if reason.strip() else ""
    word = _LEADS.get(word, word)
    return word if _FIELD.fullmatch(word) else "other"
