"""Prometheus metrics of the stream job (served at /metrics)."""

from __future__ import annotations

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
WINDOWS_EXPIRED = Counter("orderstats_windows_expired", "Windows deleted past the retention",
                          registry=REGISTRY)
FIRST_BATCH = Gauge("orderstats_first_batch_started_seconds", "Wall-clock time this worker "
                    "started its first batch (0 before); the benchmark times from it",
                    registry=REGISTRY)
REREADS = Counter("orderstats_rereads", "Partitions re-read from the next expected offset "
                  "because fetched records were dropped before reaching the agent "
                  "(a rebalance race); nothing is lost, the re-read replaces them",
                  registry=REGISTRY)
REPARTITIONED = Counter("orderstats_repartitioned", "Orders forwarded to the repartition "
                        "topic because their key or partition did not match their store "
                        "(no key, another key format, another partitioner)", registry=REGISTRY)
