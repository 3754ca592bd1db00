"""orderstats dlq without Kafka: reasons folded, bytes escaped, origins and redrive headers;
``gateway`` and ``dlq`` answer --help without a broker and fail in one line without one."""

from __future__ import annotations

import os
import subprocess

import pytest

from app.cli.dlq import DlqError, escape, parse_since, reason_kind, render_value
from app.kafka.dlq import DeadLetter
from tests.support import ORDERSTATS

NO_BROKER = {**os.environ, "ORDERSTATS_BROKER": "kafka://127.0.0.1:1"}


def letter(headers: tuple = ()) -> DeadLetter:
    return DeadLetter("orders-dlq", 1, 42, 1_795_000_000_000, b"s-1", b"\xff{x", headers)


def test_origin_is_the_source_record_and_headers_travel():
    dl = letter((("orderstats.reason", b"total must be an integer"),
                 ("orderstats.source.topic", b"orders"), ("orderstats.source.partition", b"3"),
                 ("orderstats.source.offset", b"1500"), ("trace-id", b"abc")))
    assert dl.origin == "orders/3/1500" and dl.where == "orders-dlq/1/42"
    assert dl.reason == "total must be an integer" and dl.source_partition == "3"
    headers = dict(dl.redrive_headers(7))
    assert headers["trace-id"] == b"abc"  # the producer's own headers are kept
    assert headers["orderstats.redrive.origin"] == b"orders/3/1500"
    assert headers["orderstats.redrive.dlq"] == b"orders-dlq/1/42"
    assert headers["orderstats.redrive.reason"] == b"total must be an integer"
    assert not any(k.startswith("orderstats.source.") or k == "orderstats.reason"
                   for k in headers)
    assert letter().origin == "orders-dlq/1/42"  # no headers: the dead letter itself


def test_reasons_fold_particulars():
    assert reason_kind("items[0].qty must be between 1 and 1000000, got 0") == \
        "items[N].qty must be between N and N, got N"
    assert reason_kind("created_at 'yesterday' is not an ISO-8601 time") == \
        "created_at '…' is not an ISO-8601 time"
    assert reason_kind("not valid UTF-8 JSON") == "not valid UTF-8 JSON"


def test_bytes_are_escaped_json_is_pretty():
    assert escape(b"\xff{not json\x01") == "\\xff{not json\\x01"
    assert escape(None) == "(null)"
    assert escape(b"a" * 10, limit=4) == "aaaa… (10 bytes)"
    assert render_value(b'{"a":1}') == '{\n  "a": 1\n}'
    assert render_value(b"\xff") == "\\xff"


def test_since_takes_a_time_or_a_duration():
    assert parse_since("2026-11-23T00:00:00Z", 0) == 1_795_392_000_000
    assert parse_since("PT1H", 10_000_000) == 10_000_000 - 3_600_000
    with pytest.raises(DlqError):
        parse_since("yesterday", 0)


@pytest.mark.parametrize("command", [("gateway",), ("dlq",)])
def test_help_answers_without_a_broker(command):
    proc = subprocess.run([ORDERSTATS, *command, "--help"], env=NO_BROKER, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "Usage: orderstats" in proc.stdout, proc.stderr


def test_dlq_without_a_broker_is_one_line():
    proc = subprocess.run([ORDERSTATS, "dlq", "stats"], env=NO_BROKER, capture_output=True,
                          text=True, timeout=60)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert "127.0.0.1:1" in lines[0] and "ORDERSTATS_BROKER" in lines[0]


def test_gateway_on_a_public_address_without_keys_is_one_line():
    proc = subprocess.run([ORDERSTATS, "gateway", "--port", "1"],
                          env={**NO_BROKER, "ORDERSTATS_GATEWAY_BIND": "0.0.0.0"},
                          capture_output=True, text=True, timeout=60)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert "without API keys" in lines[0] and "ORDERSTATS_GATEWAY_KEYS_FILE" in lines[0]
