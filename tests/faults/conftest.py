"""Brokers of the fault tests' own, started by scripts/kafka: they get stopped and killed,
so the session's broker (tests/conftest.py) is never one of them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.support import ROOT, Deployment, free_port

SCRIPT = str(ROOT / "scripts" / "kafka")


@dataclass
class Brokers:
    """One broker, or a cluster (``nodes`` > 1) of combined broker+controller nodes."""

    data: Path
    ports: list[int]
    controller_ports: list[int]

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERSTATS_KAFKA_")}
        env.update({"ORDERSTATS_KAFKA_DATA_DIR": str(self.data),
                    "ORDERSTATS_KAFKA_PORT": str(self.ports[0]),
                    "ORDERSTATS_KAFKA_CONTROLLER_PORT": str(self.controller_ports[0])})
        if len(self.ports) > 1:
            env.update({"ORDERSTATS_KAFKA_BROKERS": str(len(self.ports)),
                        "ORDERSTATS_KAFKA_PORTS": ",".join(map(str, self.ports)),
                        "ORDERSTATS_KAFKA_CONTROLLER_PORTS":
                            ",".join(map(str, self.controller_ports))})
        return env

    @property
    def url(self) -> str:
        return ";".join(f"kafka://127.0.0.1:{p}" for p in self.ports)

    def _script(self, command: str, node: int | None = None) -> None:
        env = self.env if node is None else {**self.env, "ORDERSTATS_KAFKA_NODE": str(node)}
        subprocess.run([SCRIPT, command], env=env, check=True, timeout=300,
                       stdout=subprocess.DEVNULL)

    def start(self, node: int | None = None) -> None:
        """Start every broker (or node ``node``, 1-based) and wait until it serves."""
        self._script("start", node)

    def stop(self, node: int | None = None) -> None:
        """A clean stop (SIGTERM), as an operator or a host shutdown would."""
        self._script("stop", node)

    def kill(self, node: int) -> None:
        """kill -9 of node ``node`` (1-based; its node id in the cluster)."""
        data = self.data / f"node-{node}" if len(self.ports) > 1 else self.data
        os.kill(int((data / "kafka.pid").read_text()), signal.SIGKILL)

    def port_of(self, node_id: int) -> int:
        return self.ports[node_id - 1]


def _brokers(tmp_path_factory: pytest.TempPathFactory, nodes: int) -> Iterator[Brokers]:
    brokers = Brokers(tmp_path_factory.mktemp("kafka-fault"),
                      [free_port() for _ in range(nodes)], [free_port() for _ in range(nodes)])
    brokers.start()
    try:
        yield brokers
    finally:
        subprocess.run([SCRIPT, "stop"], env=brokers.env, timeout=180,
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(brokers.data, ignore_errors=True)


@pytest.fixture
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brokers]:
    """A single broker of this test's own, which the test may stop and start again."""
    yield from _brokers(tmp_path_factory, 1)


@pytest.fixture
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brokers]:
    """Three KRaft nodes (each broker and controller voter): topics replicated 3 times,
    min.insync.replicas 2, so one node may die without losing an acknowledged record."""
    yield from _brokers(tmp_path_factory, 3)


@pytest.fixture
def own_deployment(tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """Make a Deployment on a given broker; its workers are stopped afterwards."""
    made: list[Deployment] = []

    def make(broker: str, **extra_env: str) -> Deployment:
        dep = Deployment(broker, tmp_path, extra_env=dict(extra_env))
        made.append(dep)
        return dep

    try:
        yield make
    finally:
        for dep in made:
            dep.cleanup()
