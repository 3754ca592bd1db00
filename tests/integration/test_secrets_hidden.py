"""No secret in any log line, error, metric or API answer.

A worker and a gateway run through the SASL_SSL broker (``kafka_sasl``: the password is in
their environment) with a read token, an admin token and a gateway key set. The test exercises
them (good requests, wrong tokens and keys, the sign-in form, /metrics, /api/cluster,
/api/openapi.json, a command with a wrong password, settings errors) and then looks for every
secret in every log file, stdout and stderr, metric text and answer (body and headers).

One answer does carry a token by design: the Set-Cookie of a successful sign-in, sent to
the browser that presented that very token. It is checked for its attributes and left out.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import orjson
import pytest

from app.gateway.auth import hash_key
from app.timefmt import format_iso_ms
from tests.http_call import Answer, bearer, call
from tests.support import ORDERSTATS, Deployment, free_port
from tests.worker_process import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

READ = f"read-{secrets.token_hex(16)}"
ADMIN = f"admin-{secrets.token_hex(16)}"
GATEWAY_KEY = f"gwkey-{secrets.token_hex(16)}"
WRONG_PASSWORD = f"wrongpw-{secrets.token_hex(12)}"
BAD_TOKEN = f"bad token {secrets.token_hex(8)}"  # refused by the settings (a space)


class Recorder:
    """Every answer and every command output of the test, to be searched at the end."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def answer(self, what: str, a: Answer, cookie_ok: bool = False) -> Answer:
        headers = [f"{k}: {v}" for k, v in a.headers.items()
                   if not (cookie_ok and k.lower() == "set-cookie")]
        self.texts.append((what, f"{a.status}\n" + "\n".join(headers) + "\n" + a.text))
        return a

    def get(self, url: str, what: str = "", **kw: object) -> Answer:
        return self.answer(what or url, call(url, **kw))  # type: ignore[arg-type]


@pytest.fixture
def sasl_deployment(kafka_sasl, tmp_path: Path) -> Iterator[Deployment]:
    env = {**kafka_sasl.env, "ORDERSTATS_API_READ_TOKEN": READ,
           "ORDERSTATS_API_ADMIN_TOKEN": ADMIN,
           "ORDERSTATS_GATEWAY_KEYS": f"{hash_key(GATEWAY_KEY)} s-1,s-2"}
    dep = Deployment(kafka_sasl.sasl_url, tmp_path, extra_env=env)
    try:
        yield dep
    finally:
        dep.cleanup()


def run(args: list[str], env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    proc = subprocess.Popen([ORDERSTATS, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def order(oid: str, store: str) -> bytes:
    return orjson.dumps({"order_id": oid, "store_id": store,
                         "created_at": format_iso_ms(int(time.time() * 1000)),
                         "items": [{"sku": "A-1", "qty": 1, "unit_price": 100}], "total": 100,
                         "currency": "JPY"})


def test_no_secret_anywhere(kafka_sasl, sasl_deployment: Deployment, tmp_path: Path):
    dep, rec = sasl_deployment, Recorder()
    the_secrets = {"broker password": kafka_sasl.password, "read token": READ,
                   "admin token": ADMIN, "gateway key": GATEWAY_KEY,
                   "wrong password": WRONG_PASSWORD, "refused token": BAD_TOKEN}

    worker = dep.worker()
    port = free_port()
    gw_out, gw_err = tmp_path / "gateway.stdout.log", tmp_path / "gateway.stderr.log"
    with open(gw_out, "wb") as out, open(gw_err, "wb") as err:
        gateway = subprocess.Popen([ORDERSTATS, "gateway", "--port", str(port)], env=dep.env,
                                   stdout=out, stderr=err, start_new_session=True)
    gw = f"http://127.0.0.1:{port}"
    try:
        worker.wait_ready()
        wait_for(lambda: call(gw + "/ready", timeout=2).status == 200, 60, what="gateway ready")

        # The gateway: a store key, the admin token (any store), wrong keys, its metrics.
        assert rec.answer("gw key", call(gw + "/orders", "POST", bearer(GATEWAY_KEY),
                                         order("o-1", "s-1"))).status == 202
        assert rec.answer("gw admin", call(gw + "/orders", "POST", bearer(ADMIN),
                                           order("o-2", "s-9"))).status == 202
        for key in (READ, "nope-" + GATEWAY_KEY, WRONG_PASSWORD):
            a = rec.answer("gw wrong", call(gw + "/orders", "POST", bearer(key), order("o-3", "s-1")))
            assert a.status == 401
        assert rec.answer("gw forbidden", call(gw + "/orders", "POST", bearer(GATEWAY_KEY),
                                               order("o-4", "s-9"))).status == 403
        assert rec.get(gw + "/metrics").status == 401
        assert rec.get(gw + "/metrics", headers=bearer(READ)).status == 200

        # The worker counts them; then every route, with good and bad credentials.
        wait_for(lambda: call(worker.url + "/api/stores/s-9", headers=bearer(READ)).status == 200
                 and call(worker.url + "/api/stores/s-1", headers=bearer(READ)).status == 200,
                 120, what="the gateway's orders counted")
        for path in ("/", "/api/stores", "/api/stores/s-1", "/api/stores/s-9/windows?from=x",
                     "/api/cluster", "/api/live", "/api/openapi.json", "/metrics", "/health",
                     "/ready", "/api/_local/status", "/table/", "/router/", "/nowhere"):
            for headers in ({}, bearer(READ), bearer(ADMIN), bearer(WRONG_PASSWORD),
                            bearer(GATEWAY_KEY), {"Cookie": f"orderstats_token={ADMIN}x"}):
                rec.get(worker.url + path, f"worker {path}", headers=headers, limit=200_000)
        assert rec.get(worker.url + "/metrics", headers=bearer(READ)).status == 200
        assert rec.get(worker.url + "/api/cluster", headers=bearer(READ)).status == 200
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        a = rec.answer("login", call(worker.url + "/login", "POST", form,
                                     f"token={READ}&next=/".encode()), cookie_ok=True)
        assert a.status == 303 and READ in a.headers["Set-Cookie"]
        assert "HttpOnly" in a.headers["Set-Cookie"]
        assert rec.answer("login wrong", call(worker.url + "/login", "POST", form,
                                              f"token={ADMIN}x".encode())).status == 401
        assert rec.get(f"{worker.url}/?token={READ}x").status == 401
    finally:
        if worker.alive():
            worker.stop()
        if gateway.poll() is None:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(30)

    # A command with a wrong broker password; settings errors with the secrets set.
    wrong = run(["generate", "--count", "1", "--rate", "0"],
                {**dep.env, "ORDERSTATS_SASL_PASSWORD": WRONG_PASSWORD})
    assert wrong.returncode != 0 and "refused the credentials" in wrong.stderr, wrong.stderr
    bad_setting = run(["worker"], {**dep.env, "ORDERSTATS_PARTITIONS": "many"})
    assert bad_setting.returncode != 0 and "ORDERSTATS_PARTITIONS" in bad_setting.stderr
    bad_token = run(["worker"], {**dep.env, "ORDERSTATS_API_READ_TOKEN": BAD_TOKEN})
    assert bad_token.returncode != 0 and "ORDERSTATS_API_READ_TOKEN" in bad_token.stderr
    bad_gw = run(["gateway", "--port", str(free_port())],
                 {**dep.env, "ORDERSTATS_GATEWAY_KEYS": f"{GATEWAY_KEY} s-1"})
    assert bad_gw.returncode != 0 and "ORDERSTATS_GATEWAY_KEYS" in bad_gw.stderr
    for name, proc in (("wrong password", wrong), ("bad setting", bad_setting),
                       ("bad token", bad_token), ("bad gateway key", bad_gw)):
        rec.texts.append((f"{name}: stdout", proc.stdout))
        rec.texts.append((f"{name}: stderr", proc.stderr))

    logs = sorted(tmp_path.rglob("*.log"))
    assert worker.log_path in logs and gw_err in logs
    assert worker.log_path.stat().st_size > 0 and gw_err.stat().st_size > 0
    for path in logs:
        rec.texts.append((str(path), path.read_text(errors="replace")))
    leaks = [f"{secret_name} in {what}" for what, text in rec.texts
             for secret_name, secret in the_secrets.items() if secret in text]
    assert not leaks, leaks
    assert len(rec.texts) > 100
    print(f"\nsearched {len(rec.texts)} answers, outputs and logs "
          f"({sum(len(t) for _, t in rec.texts):,} characters) for {len(the_secrets)} secrets")
