"""``scripts/kafka topics|groups|consume|produce`` run Kafka's own CLI tools against a broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid

import pytest

from app.kafka.clients import Connection
from app.kafka.topics import ensure_topic
from tests.support import ROOT

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def tool(broker: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ORDERSTATS_BROKER": broker}
    return subprocess.run([str(ROOT / "scripts" / "kafka"), *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=900)


def test_kafka_tools_answer_against_the_broker(kafka: str):
    topic = f"tools-{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topic(Connection(kafka), topic, 3))
    listed = tool(kafka, "topics", "--list")
    assert listed.returncode == 0, listed.stderr
    assert topic in listed.stdout.split()
    described = tool(kafka, "topics", "--describe", "--topic", topic)
    assert described.returncode == 0 and "PartitionCount: 3" in described.stdout

    produced = tool(kafka, "produce", "--topic", topic, "--reader-property", "parse.key=true",
                    "--reader-property", "key.separator=|", stdin="s-1|{\"order_id\": \"o-1\"}\n")
    assert produced.returncode == 0, produced.stderr
    group = f"tools-group-{uuid.uuid4().hex[:6]}"
    consumed = tool(kafka, "consume", "--topic", topic, "--from-beginning", "--group", group,
                    "--max-messages", "1", "--timeout-ms", "20000",
                    "--formatter-property", "print.key=true")
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.strip() == 's-1\t{"order_id": "o-1"}'
    groups = tool(kafka, "groups", "--describe", "--group", group)
    assert groups.returncode == 0, groups.stderr
    assert topic in groups.stdout and group in groups.stdout
