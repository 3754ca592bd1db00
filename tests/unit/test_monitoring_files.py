"""The Grafana dashboard, its provisioning and Prometheus' config (docker/) cannot be run
here; check that every metric the dashboard queries is one the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from app import metrics
from app.gateway.metrics import GatewayMetrics
from app.settings import Settings

DOCKER = Path(__file__).resolve().parents[2] / "docker"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "orderstats.json"
SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("", "_sum", "_count", "_created"), "info": ("_info",)}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset",
                "bool", "and", "or", "unless", "inf", "nan"}
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def exported_names() -> set[str]:
    """Every series name /metrics can show: the families with their type's suffixes."""
    names = set()
    for registry in (metrics.REGISTRY, GatewayMetrics().registry):
        for family in registry.collect():
            names |= {family.name + s for s in SUFFIXES[family.type]}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (label matchers, grouping, ranges,
    strings, numbers, Grafana variables and function calls removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', " ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][\w:]*", expr):
        following = expr[m.end():].lstrip()[:1]
        if following == "(" or m.group().lower() in PROMQL_WORDS:
            continue
        names.add(m.group())
    return names


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for var in dash.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        m = re.fullmatch(r"label_values\((.*),\s*\w+\)", query or "")
        if m:
            exprs.append(m.group(1))
    return exprs


def test_the_expression_parser_finds_metric_names_only():
    assert metric_names('histogram_quantile(0.99, sum by (route, le) (rate('
                        'orderstats_web_request_seconds_bucket{job=~"$job", route!="/x"}'
                        '[$__rate_interval])))') == {"orderstats_web_request_seconds_bucket"}
    assert metric_names("time() - max by (partition) (orderstats_watermark_seconds)") == {
        "orderstats_watermark_seconds"}
    assert metric_names("count(up == 1) or vector(0)") == {"up"}


def test_every_metric_the_dashboard_queries_is_exported():
    exported = exported_names()
    used = set()
    for expr in dashboard_exprs():
        names = metric_names(expr)
        assert names, expr
        used |= names
    assert used - PROMETHEUS_OWN <= exported, sorted(used - PROMETHEUS_OWN - exported)


def test_the_dashboard_has_the_panels_operators_asked_for():
    dash = json.loads(DASHBOARD.read_text())
    by_metric: dict[str, str] = {}
    for panel in dash["panels"]:
        for target in panel["targets"]:
            for name in metric_names(target["expr"]):
                by_metric.setdefault(name, target["expr"])
            assert target["datasource"]["uid"] == "prometheus"
    for name in ("orderstats_events_total", "orderstats_consumer_lag",
                 "orderstats_watermark_seconds", "orderstats_batch_seconds_bucket",
                 "orderstats_dead_letters_total", "orderstats_repartitioned_total",
                 "orderstats_web_request_seconds_bucket"):
        assert name in by_metric, name
    assert "0.99" in by_metric["orderstats_batch_seconds_bucket"]
    assert "route" in by_metric["orderstats_web_request_seconds_bucket"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_grafana_is_provisioned_with_the_dashboard_and_prometheus():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    mounts = dict(v.split(":")[:2] for v in compose["grafana"]["volumes"])
    providers = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/orderstats.yaml")
                               .read_text())["providers"]
    container_dir = providers[0]["options"]["path"]
    host_dir = next(h for h, c in mounts.items() if c == container_dir)
    assert (DOCKER / host_dir / DASHBOARD.name).is_file()
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    sources = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/prometheus.yaml")
                             .read_text())["datasources"]
    assert sources[0]["uid"] == "prometheus" and sources[0]["type"] == "prometheus"
    assert sources[0]["url"].split("//")[1].split(":")[0] in compose
    prom_mounts = dict(v.split(":")[:2] for v in compose["prometheus"]["volumes"])
    assert (DOCKER / "prometheus.yml").is_file() and "./prometheus.yml" in prom_mounts


def test_prometheus_scrapes_every_worker_and_the_gateway_on_their_ports():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]}
    for job in config["scrape_configs"]:
        assert job["metrics_path"] == "/metrics"
    defaults = Settings()
    workers = {name for name in compose if name.startswith("worker-")}
    assert {f"{w}:{defaults.web_port}" for w in workers} <= targets
    assert f"gateway:{defaults.gateway_port}" in targets
    assert compose["gateway"]["command"] == ["orderstats", "gateway"]
    env = {k: str(v) for k, v in compose["gateway"]["environment"].items()}
    # not loopback: the gateway needs a key to start at all
    assert env["ORDERSTATS_GATEWAY_BIND"] == "0.0.0.0"
    assert Settings.from_env(env).gateway_admin_key_sha256
