"""The deployment examples (docker/k8s, docker/systemd) cannot be run here; check that they
agree with the code: ports, probe paths, settings names and the stop timeouts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from app.gateway.app import build_app
from app.gateway.auth import parse_entries
from app.settings import Settings
from app.web.routes import ROUTES

DOCKER = Path(__file__).resolve().parents[2] / "docker"
DEFAULTS = Settings()
KNOWN = {f"ORDERSTATS_{name.upper()}" for name in Settings.__dataclass_fields__}


def k8s_objects() -> dict[tuple[str, str], dict]:
    objects = {}
    for path in sorted((DOCKER / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


OBJECTS = k8s_objects()
CONFIG = OBJECTS[("ConfigMap", "orderstats-config")]["data"]


def gateway_get_routes() -> set[str]:
    app = build_app(Settings(), None, None)  # type: ignore[arg-type]  # routes only
    return {r.resource.canonical for r in app.router.routes() if r.method == "GET"}


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def orderstats_env(container: dict) -> dict[str, str]:
    """The ORDERSTATS_* variables the container gets: the shared ConfigMap, then its env."""
    env = dict(CONFIG) if container.get("envFrom") else {}
    env.update({n: e["value"] for n, e in env_of(container).items() if "value" in e})
    return {n: v for n, v in env.items() if n.startswith("ORDERSTATS_")}


def settings_of(container: dict) -> Settings:
    env = {n: re.sub(r"\$\([A-Z_]+\)", "x", v) for n, v in orderstats_env(container).items()}
    return Settings.from_env(env)


def the_container(kind: str, name: str) -> tuple[dict, dict]:
    pod = OBJECTS[(kind, name)]["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    return pod, pod["containers"][0]


def named_port(container: dict, name: str) -> int:
    return next(p["containerPort"] for p in container["ports"] if p["name"] == name)


def test_every_object_is_complete_and_only_real_settings_are_named():
    assert {kind for kind, _ in OBJECTS} >= {"ConfigMap", "Service", "StatefulSet",
                                             "Deployment", "Secret"}
    assert set(CONFIG) <= KNOWN
    Settings.from_env(CONFIG)  # valid values
    for kind, name in OBJECTS:
        if kind in ("StatefulSet", "Deployment"):
            _pod, container = the_container(kind, name)
            assert set(orderstats_env(container)) <= KNOWN


def test_workers_statefulset_keeps_a_volume_each_and_advertises_the_pod_name():
    pod, worker = the_container("StatefulSet", "orderstats-workers")
    sts = OBJECTS[("StatefulSet", "orderstats-workers")]["spec"]
    assert worker["args"][:2] == ["orderstats", "worker"]
    settings = settings_of(worker)
    # RocksDB on the pod's own persistent volume
    claims = {c["metadata"]["name"] for c in sts["volumeClaimTemplates"]}
    mounts = {m["name"]: m["mountPath"] for m in worker["volumeMounts"]}
    data_mount = [n for n, path in mounts.items() if path == settings.data_dir]
    assert data_mount and data_mount[0] in claims
    # the web server: all interfaces, the port the code uses, the pod's stable DNS name
    assert settings.web_bind == "0.0.0.0"
    assert named_port(worker, "web") == settings.web_port == DEFAULTS.web_port
    env = env_of(worker)
    names = list(env)
    host = env["ORDERSTATS_WEB_HOST"]["value"]
    headless = OBJECTS[("Service", sts["serviceName"])]["spec"]
    assert host.startswith(f"$(POD_NAME).{sts['serviceName']}.")
    for ref, field in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
        if f"$({ref})" in host:
            assert env[ref]["valueFrom"]["fieldRef"]["fieldPath"] == field
            assert names.index(ref) < names.index("ORDERSTATS_WEB_HOST")  # k8s expands earlier
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True  # peers talk while recovering
    assert headless["selector"] == sts["selector"]["matchLabels"]
    assert headless["ports"][0]["port"] == settings.web_port
    client = OBJECTS[("Service", "orderstats")]["spec"]
    assert client["selector"] == sts["selector"]["matchLabels"]
    assert pod["securityContext"]["runAsUser"] == image_uid()


def test_worker_probes_are_real_routes_and_the_stop_is_long_enough():
    pod, worker = the_container("StatefulSet", "orderstats-workers")
    settings = settings_of(worker)
    assert worker["livenessProbe"]["httpGet"]["path"] == "/health"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/ready"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        get = worker[probe]["httpGet"]
        assert get["path"] in ROUTES
        assert get["port"] in ("web", settings.web_port)
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > settings.session_timeout_s + settings.batch_within_s + 10


def test_gateway_deployment_listens_on_all_interfaces_with_keys_from_a_secret():
    pod, gateway = the_container("Deployment", "orderstats-gateway")
    assert gateway["args"] == ["orderstats", "gateway"]
    settings = settings_of(gateway)
    assert settings.gateway_bind == "0.0.0.0"
    assert named_port(gateway, "http") == settings.gateway_port == DEFAULTS.gateway_port
    # not loopback, so keys are required: the file comes from a mounted Secret
    keys_dir, keys_name = settings.gateway_keys_file.rsplit("/", 1)
    mount = next(m for m in gateway["volumeMounts"] if m["mountPath"] == keys_dir)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    secret = OBJECTS[("Secret", volume["secret"]["secretName"])]
    entries = parse_entries(secret["stringData"][keys_name].splitlines(), "the Secret")
    assert entries
    routes = gateway_get_routes()
    assert {"/health", "/ready", "/metrics"} <= routes
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/health"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/ready"
    service = OBJECTS[("Service", "orderstats-gateway")]["spec"]
    assert service["selector"] == OBJECTS[("Deployment", "orderstats-gateway")]["spec"][
        "selector"]["matchLabels"]
    assert service["ports"][0]["port"] == settings.gateway_port
    assert service["ports"][0]["targetPort"] == "http"


def test_both_workloads_are_scraped_on_their_metrics_route():
    for kind, name, port in (("StatefulSet", "orderstats-workers", DEFAULTS.web_port),
                             ("Deployment", "orderstats-gateway", DEFAULTS.gateway_port)):
        notes = OBJECTS[(kind, name)]["spec"]["template"]["metadata"]["annotations"]
        assert notes["prometheus.io/path"] == "/metrics"
        assert int(notes["prometheus.io/port"]) == port
    assert "/metrics" in ROUTES


def image_uid() -> int:
    m = re.search(r"useradd [^&]*--uid (\d+)", (DOCKER / "Dockerfile").read_text())
    assert m, "the Dockerfile gives the orderstats user a fixed uid (fsGroup, runAsUser)"
    return int(m.group(1))


def unit_file(name: str) -> dict[str, list[str]]:
    """``Section.Key`` -> every value (systemd keys may repeat)."""
    entries: dict[str, list[str]] = {}
    section = ""
    for line in (DOCKER / "systemd" / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return entries


@pytest.mark.parametrize("name,command", [("orderstats-worker@.service", "worker"),
                                          ("orderstats-gateway.service", "gateway")])
def test_systemd_units_stop_cleanly_and_restart_on_failure(name, command):
    unit = unit_file(name)
    exec_start = unit["Service.ExecStart"][0].split()
    assert exec_start[0].endswith("/orderstats") and exec_start[1] == command
    assert unit["Service.Restart"] == ["on-failure"]
    assert unit["Service.KillSignal"] == ["SIGTERM"]
    assert unit["Service.EnvironmentFile"]
    assert int(unit["Service.TimeoutStopSec"][0]) > DEFAULTS.session_timeout_s
    assert unit["Install.WantedBy"] == ["multi-user.target"]
    assert not any(k.startswith("Service.StartLimit") for k in unit)  # [Unit] keys
    env = dict(v.split("=", 1) for v in unit.get("Service.Environment", []))
    assert set(env) <= KNOWN


def test_systemd_worker_instances_get_their_own_data_directory():
    unit = unit_file("orderstats-worker@.service")
    env = dict(v.split("=", 1) for v in unit["Service.Environment"])
    assert "%i" in env["ORDERSTATS_DATA_DIR"]
    assert env["ORDERSTATS_DATA_DIR"].startswith("/var/lib/")
    assert unit["Service.StateDirectory"][0].replace("orderstats", "/var/lib/orderstats", 1) \
        == env["ORDERSTATS_DATA_DIR"]
    assert int(unit["Service.TimeoutStopSec"][0]) > (DEFAULTS.session_timeout_s
                                                     + DEFAULTS.batch_within_s + 10)
    assert any("%i" in f for f in unit["Service.EnvironmentFile"])  # per-instance port etc.
    assert int(env["ORDERSTATS_WEB_PORT"]) == DEFAULTS.web_port
