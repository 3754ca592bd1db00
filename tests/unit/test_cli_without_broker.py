"""Every command's --help answers without a broker; a command that needs one says so in a line."""

from __future__ import annotations

import os
import subprocess

import pytest

from app.faust_ext.guard import version_problem
from tests.support import ORDERSTATS

NO_BROKER = {**os.environ, "ORDERSTATS_BROKER": "kafka://127.0.0.1:1"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ORDERSTATS, *args], env=NO_BROKER, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("command", [(), ("worker",), ("generate",), ("replay",), ("verify",)])
def test_help_answers_without_a_broker(command):
    proc = run(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage: orderstats" in proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [("worker",), ("generate", "--count", "1"),
                                     ("replay", "--to-earliest")])
def test_an_unreachable_broker_is_one_line_naming_url_and_setting(command):
    proc = run(*command)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "127.0.0.1:1" in lines[0] and "ORDERSTATS_BROKER" in lines[0]


def test_version_guard_names_the_package_and_both_versions():
    assert version_problem() is None  # the installed releases are the pinned ones
    problem = version_problem({"aiokafka": "0.0.1"})
    assert problem is not None and "aiokafka==0.0.1" in problem and "0.14.0" in problem
