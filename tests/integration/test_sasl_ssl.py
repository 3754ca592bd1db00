"""End to end through a SASL_SSL listener (SCRAM-SHA-512, a throwaway CA), and its failures.

The ``kafka_sasl`` broker (tests/conftest.py) has a PLAINTEXT listener as well; the code
under test only ever gets the SASL_SSL one, and the test checks the worker used nothing else.
A wrong password or an untrusted CA must each give one clear line on stderr, quickly, with
no traceback, no retry storm and no password in it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import orjson
import pytest

from tests.support import ORDERSTATS, Deployment, assert_matches_truth, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WRONG_PASSWORD = "wrong-Pa55word-x9q"
FAIL_WITHIN_S = 20
# A failing command may try once and then probe once to explain why (per bootstrap host);
# more than a few connections is a client retrying in a loop.
MAX_CONNECTIONS = 4


@pytest.fixture
def sasl_deployment(kafka_sasl, tmp_path: Path) -> Iterator[Deployment]:
    """An isolated deployment whose every client talks SASL_SSL to ``kafka_sasl``."""
    dep = Deployment(kafka_sasl.sasl_url, tmp_path, extra_env=kafka_sasl.env)
    try:
        yield dep
    finally:
        dep.cleanup()


def http_text(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read().decode(errors="replace")


def connected_ports(pid: int, ports: set[int]) -> set[int]:
    """Ports among ``ports`` on 127.0.0.1 that process ``pid`` has an open TCP socket to
    (from /proc: its socket inodes, matched against /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        host, port = remote.split(":")
        if (inode in inodes and state == "01" and host == "0100007F"  # ESTABLISHED, 127.0.0.1
                and int(port, 16) in ports):
            found.add(int(port, 16))
    return found


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_pipeline_runs_exactly_through_sasl_ssl(kafka_sasl, sasl_deployment: Deployment,
                                                tmp_path: Path):
    dep = sasl_deployment
    env = dep.env
    assert env["ORDERSTATS_BROKER"] == kafka_sasl.sasl_url
    assert env["ORDERSTATS_SECURITY_PROTOCOL"] == "SASL_SSL"

    started = time.monotonic()
    proc = dep.run("generate", "--count", "5000", "--span", "600", "--rate", "0",
                   "--truth", str(tmp_path / "truth.json"))
    generate_s = time.monotonic() - started
    truth = orjson.loads((tmp_path / "truth.json").read_bytes())
    assert truth["stores"], truth
    assert kafka_sasl.password not in proc.stdout + proc.stderr

    worker = dep.worker()
    ready_s = worker.wait_ready()
    assert_matches_truth(worker.url, truth)

    # Through SASL_SSL only: the worker is connected to that listener and never to PLAINTEXT.
    plain, sasl = port_of(kafka_sasl.url), port_of(kafka_sasl.sasl_url)
    assert connected_ports(worker.proc.pid, {plain, sasl}) == {sasl}

    # (d) The password is in none of what the running worker shows.
    for path in ("/api/cluster", "/metrics"):
        status, body = http_text(worker.url + path)
        assert status == 200, (path, body[:500])
        assert kafka_sasl.password not in body, path
    assert worker.stop() == 0
    log = worker.log_path.read_text(errors="replace")
    assert log.strip(), "the worker wrote no log"
    assert kafka_sasl.password not in log
    assert "Traceback" not in log, worker.log_tail()
    print(f"\ngenerate 5000 via SASL_SSL: {generate_s:.1f}s; worker ready in {ready_s:.1f}s")


def run_failing(args: list[str], env: dict[str, str], timeout: float = 60
                ) -> tuple[int, str, str, float]:
    """(exit code, stdout, stderr, seconds) of an ``orderstats`` command expected to fail.

    A command still running after ``timeout`` is killed with its process group and the test
    fails, showing what it printed."""
    started = time.monotonic()
    proc = subprocess.Popen([ORDERSTATS, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"orderstats {' '.join(args)} still running after {timeout}s; "
                    f"stderr:\n{err[-3000:]}\nstdout:\n{out[-2000:]}")
    return proc.returncode, out, err, time.monotonic() - started


def refused_logins(kafka_sasl) -> int:
    """How many logins the broker refused so far ("Failed authentication with ...", INFO).

    A client that gives up on an untrusted certificate never gets as far: the broker logs
    nothing then; :class:`CountingProxy` counts those attempts."""
    try:
        return kafka_sasl.log.read_text(errors="replace").count(
            "invalid credentials with SASL mechanism")
    except FileNotFoundError:
        return 0


class CountingProxy:
    """A TCP relay on 127.0.0.1 in front of one broker listener, counting connections.

    Commands bootstrapped through it make every attempt through it as long as bootstrap
    fails (after a successful one they would follow the advertised listener instead)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.connections = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "CountingProxy":
        self._thread.start()
        assert self._started.wait(10), "proxy did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._relay, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()
        server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


COMMANDS = {"generate": ["generate", "--count", "1", "--rate", "0"],
            "worker": ["worker", "-l", "info"]}


def failing_env(dep: Deployment, tmp_path: Path, proxy: CountingProxy, **overrides: str
                ) -> dict[str, str]:
    return {**dep.env, "ORDERSTATS_BROKER": f"kafka://127.0.0.1:{proxy.port}",
            "ORDERSTATS_DATA_DIR": str(tmp_path / "data"),
            "ORDERSTATS_WEB_BIND": "127.0.0.1", "ORDERSTATS_WEB_PORT": str(free_port()),
            **overrides}


def check_one_line(code: int, out: str, err: str, seconds: float) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    shown = f"exit {code} after {seconds:.1f}s; stderr:\n{err[-4000:]}\nstdout:\n{out[-2000:]}"
    assert code != 0, shown
    assert seconds < FAIL_WITHIN_S, shown
    assert "Traceback" not in err + out, shown
    assert len(lines) == 1, shown
    assert lines[0].startswith("error: "), shown
    return lines[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_wrong_password_is_one_clear_line(kafka_sasl, sasl_deployment: Deployment,
                                          tmp_path: Path, command: str):
    before = refused_logins(kafka_sasl)
    with CountingProxy(port_of(kafka_sasl.sasl_url)) as proxy:
        env = failing_env(sasl_deployment, tmp_path, proxy,
                          ORDERSTATS_SASL_PASSWORD=WRONG_PASSWORD)
        code, out, err, seconds = run_failing(COMMANDS[command], env)
    line = check_one_line(code, out, err, seconds)
    assert kafka_sasl.user in line, line
    assert "ORDERSTATS_SASL_USERNAME" in line and "ORDERSTATS_SASL_PASSWORD" in line, line
    assert "refused the credentials" in line, line
    assert WRONG_PASSWORD not in err + out
    assert kafka_sasl.password not in err + out
    assert 1 <= proxy.connections <= MAX_CONNECTIONS, f"{proxy.connections} connections: {line}"
    time.sleep(0.5)  # let the broker's log catch up
    refused = refused_logins(kafka_sasl) - before
    assert 1 <= refused <= proxy.connections, f"{refused} refused logins: {line}"
    print(f"\n{command}, wrong password: exit {code} in {seconds:.1f}s, {proxy.connections} "
          f"connections, {refused} refused logins: {line}")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_untrusted_ca_is_one_clear_line(kafka_sasl, sasl_deployment: Deployment,
                                        tmp_path: Path, command: str):
    with CountingProxy(port_of(kafka_sasl.sasl_url)) as proxy:
        env = failing_env(sasl_deployment, tmp_path, proxy,
                          ORDERSTATS_SSL_CA_FILE=str(kafka_sasl.tls.other_ca_pem))
        code, out, err, seconds = run_failing(COMMANDS[command], env)
    line = check_one_line(code, out, err, seconds)
    assert "ORDERSTATS_SSL_CA_FILE" in line and "not trusted" in line, line
    assert kafka_sasl.password not in err + out
    assert 1 <= proxy.connections <= MAX_CONNECTIONS, f"{proxy.connections} connections: {line}"
    print(f"\n{command}, untrusted CA: exit {code} in {seconds:.1f}s, {proxy.connections} "
          f"connections: {line}")
