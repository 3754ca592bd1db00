"""Session fixtures: a real Apache Kafka broker started by scripts/kafka on free ports."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.support import ROOT, Deployment, free_port


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Broker URL; ORDERSTATS_TEST_BROKER reuses a running broker instead of starting one."""
    existing = os.environ.get("ORDERSTATS_TEST_BROKER")
    if existing:
        yield existing
        return
    data = tmp_path_factory.mktemp("kafka")
    port = free_port()
    env = {**os.environ, "ORDERSTATS_KAFKA_PORT": str(port),
           "ORDERSTATS_KAFKA_CONTROLLER_PORT": str(free_port()),
           "ORDERSTATS_KAFKA_DATA_DIR": str(data)}
    script = str(ROOT / "scripts" / "kafka")
    subprocess.run([script, "start"], env=env, check=True, timeout=600)
    try:
        yield f"kafka://127.0.0.1:{port}"
    finally:
        subprocess.run([script, "stop"], env=env, timeout=120)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def deployment(kafka: str, tmp_path: Path) -> Iterator[Deployment]:
    """An isolated deployment; every worker it started is stopped afterwards."""
    dep = Deployment(kafka, tmp_path)
    try:
        yield dep
    finally:
        dep.cleanup()
