"""The container files cannot be run here (no Docker engine); check they are coherent."""

from pathlib import Path

import yaml

from app.settings import Settings

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def test_compose_runs_kafka_workers_and_generator_from_our_image():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    workers = [s for name, s in services.items() if name.startswith("worker-")]
    assert len(workers) >= 2
    for worker in workers:
        assert worker["build"]["dockerfile"] == "docker/Dockerfile"
        assert worker["environment"]["ORDERSTATS_WEB_HOST"] in services
        assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["generator"]["command"][:2] == ["orderstats", "generate"]


def test_dockerfile_installs_the_project_and_names_only_real_settings():
    text = (DOCKER / "Dockerfile").read_text()
    assert 'CMD ["orderstats", "worker"' in text
    env_names = {word.split("=")[0] for word in text.split() if word.startswith("ORDERSTATS_")}
    known = {f"ORDERSTATS_{name.upper()}" for name in Settings.__dataclass_fields__}
    assert env_names <= known
