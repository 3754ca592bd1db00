"""The gateway's Prometheus metrics, in a registry of its own (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class GatewayMetrics:
    """One set per gateway app (tests build several in one process)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter("orderstats_gateway_requests", "HTTP requests by route and "
                                "status", ["route", "status"], registry=r)
        self.latency = Histogram("orderstats_gateway_request_seconds", "Time to answer, by "
                                 "route", ["route"], registry=r,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5, 1, 2.5, 5, 10))
        self.accepted = Counter("orderstats_gateway_orders_accepted", "Orders the broker "
                                "acknowledged (answered 202, or listed as accepted)",
                                registry=r)
        self.rejected = Counter("orderstats_gateway_orders_rejected", "Orders not accepted, "
                                "by reason: invalid (400), forbidden (403), unavailable (503)",
                                ["reason"], registry=r)
        self.produce_errors = Counter("orderstats_gateway_produce_errors", "Requests whose "
                                      "orders Kafka did not all acknowledge in time",
                                      registry=r)
        self.kafka_up = Gauge("orderstats_gateway_kafka_up", "1 while the broker is reachable "
                              "and orders are taken, else 0", registry=r)
