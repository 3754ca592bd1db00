"""Session fixtures: real Apache Kafka brokers started by scripts/kafka on free ports."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

from tests.support import ROOT, Deployment, free_port

if TYPE_CHECKING:  # imported lazily below: it needs the cryptography package
    from tests.tls_material import TlsMaterial


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


@dataclass(frozen=True)
class SaslBroker:
    """A broker with a SASL_SSL listener (SCRAM-SHA-512) besides its PLAINTEXT one.

    ``env`` holds the client settings that reach it through SASL_SSL only; ``url`` (the
    PLAINTEXT listener) is for test set-up and checks, never for the code under test.
    """

    url: str  # kafka://127.0.0.1:P, PLAINTEXT
    sasl_url: str  # kafka://127.0.0.1:S, SASL_SSL
    user: str
    password: str = field(repr=False)
    tls: TlsMaterial
    data_dir: Path

    @property
    def env(self) -> dict[str, str]:
        return {"ORDERSTATS_BROKER": self.sasl_url,
                "ORDERSTATS_SECURITY_PROTOCOL": "SASL_SSL",
                "ORDERSTATS_SASL_MECHANISM": "SCRAM-SHA-512",
                "ORDERSTATS_SASL_USERNAME": self.user,
                "ORDERSTATS_SASL_PASSWORD": self.password,
                "ORDERSTATS_SSL_CA_FILE": str(self.tls.ca_pem)}

    @property
    def log(self) -> Path:
        """The broker's log (authentication failures are logged there at INFO)."""
        return self.data_dir / "kafka.log"


@pytest.fixture(scope="session")
def kafka_sasl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    """A broker of its own (ports, data dir) with a SASL_SSL listener: a throwaway CA and
    broker certificate made here, SCRAM-SHA-512 user ``orderstats-test`` created when its
    storage is formatted. Stopped at the end of the session."""
    from tests.tls_material import make_broker_tls

    tls = make_broker_tls(tmp_path_factory.mktemp("kafka-sasl-tls"), secrets.token_hex(12))
    data = tmp_path_factory.mktemp("kafka-sasl")
    port, sport = free_port(), free_port()
    user, password = "orderstats-test", f"pw-{secrets.token_hex(12)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERSTATS_KAFKA_")}
    env.update({"ORDERSTATS_KAFKA_PORT": str(port),
                "ORDERSTATS_KAFKA_CONTROLLER_PORT": str(free_port()),
                "ORDERSTATS_KAFKA_DATA_DIR": str(data),
                "ORDERSTATS_KAFKA_SASL_SSL_PORT": str(sport),
                "ORDERSTATS_KAFKA_SSL_KEYSTORE": str(tls.keystore_p12),
                "ORDERSTATS_KAFKA_SSL_KEYSTORE_PASSWORD": tls.keystore_password,
                "ORDERSTATS_KAFKA_SCRAM_USERS": f"{user}:{password}"})
    script = str(ROOT / "scripts" / "kafka")
    subprocess.run([script, "start"], env=env, check=True, timeout=600)
    try:
        yield SaslBroker(url=f"kafka://127.0.0.1:{port}", sasl_url=f"kafka://127.0.0.1:{sport}",
                         user=user, password=password, tls=tls, data_dir=data)
    finally:
        subprocess.run([script, "stop"], env=env, timeout=120)
        shutil.rmtree(data, ignore_errors=True)
