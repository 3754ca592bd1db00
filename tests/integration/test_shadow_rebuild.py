"""Rebuild while serving on the real broker: ``replay --rebuild --shadow`` under load, the
API polled on old and new workers throughout, one switch, the old epoch retired.

Checked: no 5xx and no failed request on any worker while it serves; every answer names its
epoch (``as_of.epoch``); within an epoch a store's totals never go backwards (orders are
only added); once an old worker's URL answered from the new epoch it never answers from the
old one again; after the load, the answers equal the ground truth exactly; the old workers
stop by themselves (exit 0) and delete their local state; the old epoch's topics are
deleted; a restarted old worker joins the new epoch. The switch time (the switch record's
timestamp to the first new-epoch answer from an old worker's URL) is printed.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from app.kafka.clients import bootstrap_servers
from tests.answer_probe import get, store_per_partition
from tests.worker_process import read_records
from tests.support import (ORDERSTATS, Deployment, WorkerProcess, assert_dead_letters,
                           assert_matches_truth, http_json, merge_truths, wait_for)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

STORES = 40
RETIRE_S = 10
TOTALS = ("orders", "revenue", "items", "late")


@dataclass
class Answer:
    at: float  # time.time() when it arrived
    url: str
    path: str
    status: int  # 0: no answer (connection refused, timeout)
    epoch: int | None = None
    totals: dict[str, tuple] = field(default_factory=dict)  # store -> totals
    error: str = ""


@dataclass
class EpochProbe:
    """Polls one store per partition and /api/stores on every URL of ``urls``; keeps all."""

    urls: list[str]
    stores: list[str]
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "EpochProbe":
        self._thread = threading.Thread(target=self._run, daemon=True, name="epoch-probe")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    def _run(self) -> None:
        while not self._stop.is_set():
            for url in list(self.urls):
                for path in [f"/api/stores/{s}?limit=1" for s in self.stores] + \
                        ["/api/stores?limit=1000"]:
                    self.answers.append(self.ask(url, path))
            self._stop.wait(0.05)

    def ask(self, url: str, path: str) -> Answer:
        try:
            status, _headers, body = get(url + path, timeout=15)
        except OSError as exc:
            return Answer(time.time(), url, path, 0, error=repr(exc))
        answer = Answer(time.time(), url, path, status)
        if status == 200:
            doc = orjson.loads(body)
            answer.epoch = (doc.get("as_of") or {}).get("epoch")
            rows = doc["stores"] if path.startswith("/api/stores?") else [doc]
            answer.totals = {r["store_id"]: tuple(r["totals"][k] for k in TOTALS)
                             for r in rows}
        else:
            answer.error = body[:200].decode(errors="replace")
        return answer


def topic_names(broker: str) -> set[str]:
    async def names() -> set[str]:
        client = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker))
        await client.start()
        try:
            return set(await client.list_topics())
        finally:
            await client.close()
    return asyncio.run(names())


def shadow_worker(dep: Deployment, index: int) -> WorkerProcess:
    w = WorkerProcess(dep.env, dep.tmp / f"{dep.name}-w{index}", index=index,
                      args=("--shadow",))
    dep.workers.append(w)
    return w.start()


def test_shadow_rebuild_under_load_switches_in_one_step(deployment: Deployment,
                                                        tmp_path: Path) -> None:
    dep = deployment
    dep.extra_env["ORDERSTATS_RETIRE_AFTER_S"] = str(RETIRE_S)  # workers and replay alike
    app_id = dep.env["ORDERSTATS_APP_ID"]
    # nothing pending: a shadow worker refuses in one line, --switch has nothing to do
    dep.generate(tmp_path / "warm.json", "--count", "10", "--rate", "0", "--seed", "9",
                 "--stores", "5")
    refused = dep.try_run("worker", "--shadow", timeout=60)
    assert refused.returncode != 0 and "no shadow rebuild is pending" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "nothing to do" in dep.run("replay", "--switch").stdout
    truth_warm = orjson.loads((tmp_path / "warm.json").read_bytes())

    truth_a = dep.generate(tmp_path / "a.json", "--count", "6000", "--stores", str(STORES),
                           "--rate", "0", "--span", "1800", "--seed", "1", "--invalid", "0.01",
                           "--duplicates", "0.02")
    old = [dep.worker(1), dep.worker(2)]
    for w in old:
        w.wait_ready()
    assert_matches_truth(old[0].url, merge_truths(truth_warm, truth_a))

    load = subprocess.Popen([ORDERSTATS, "generate", "--rate", "150", "--duration", "75",
                             "--stores", str(STORES), "--seed", "2", "--truth",
                             str(tmp_path / "b.json")], env=dep.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    probe = EpochProbe([w.url for w in old],
                       sorted(store_per_partition(dep.partitions, STORES).values())).start()
    try:
        time.sleep(3)
        begun = dep.run("replay", "--rebuild", "--shadow", "--to-earliest", "--no-wait")
        assert "shadow epoch 2 is pending" in begun.stdout, begun.stdout
        again = dep.try_run("replay", "--rebuild", "--shadow", "--to-earliest")
        assert again.returncode == 2 and "is pending" in again.stderr, again.stderr
        stop_world = dep.try_run("replay", "--rebuild", "--to-earliest")
        assert stop_world.returncode == 2 and "is pending" in stop_world.stderr

        shadows = [shadow_worker(dep, 3), shadow_worker(dep, 4)]
        for w in shadows:
            w.wait_ready(180)

        def settled() -> bool:  # both shadow workers in one assignment, nothing moving
            status, body = http_json(shadows[0].url + "/api/cluster")
            return (status == 200 and body["complete"] and len(body["workers"]) == 2
                    and all(w.get("ready") for w in body["workers"]))
        wait_for(settled, 120, what="the shadow group settled")
        probe.urls.extend(w.url for w in shadows)

        def rebuild_shown() -> dict:
            rebuild = http_json(old[0].url + "/api/cluster")[1]["rebuild"]
            return rebuild if sorted(u for u, e in rebuild["workers"].items() if e == 2) == \
                sorted(w.url for w in shadows) else {}
        rebuild = wait_for(rebuild_shown, 20, what="both shadow workers registered")
        assert (rebuild["epoch"], rebuild["current_epoch"], rebuild["shadow"]) == (1, 1, 2)
        assert rebuild["progress"]["group"] == f"{app_id}-v2"
        assert set(rebuild["progress"]["lag"][dep.topic]) == {str(p) for p in range(8)}

        switch = dep.run("replay", "--switch", timeout=300)
        print(switch.stdout)
        assert "caught up" in switch.stdout and "epoch 2 is current" in switch.stdout
        assert "epoch 1 retired" in switch.stdout, switch.stdout
        for w in old:  # they stopped by themselves, cleanly, and deleted their epoch-1 state
            assert w.proc.wait(60) == 0, w.log_tail()
            assert "epoch 2 is current; this epoch-1 worker stops now" in \
                w.log_path.read_text()
            assert not (w.data_dir / app_id / "v1").exists()
            assert (w.data_dir / app_id).exists()
        assert load.wait(120) == 0, load.stderr
    finally:
        probe.stop()
        if load.poll() is None:
            load.kill()
    truth = merge_truths(truth_warm, truth_a, orjson.loads((tmp_path / "b.json").read_bytes()))
    for w in shadows:
        assert_matches_truth(w.url, truth)
    # the new epoch, rebuilt from the earliest offset, did not send batch a's letters again
    # (invalid events produced WHILE both epochs run can get a letter from each: see README)
    assert assert_dead_letters(dep, truth) == 0

    # the switch record, and the old epoch's topics gone
    switch_at = next(r.timestamp / 1000 for r in read_records(dep.broker, f"{app_id}-control")
                     if r.key == b"epoch" and r.value == b"2")
    topics = topic_names(dep.broker)
    assert not {t for t in topics if t.startswith(f"{app_id}-") and not
                t.startswith(f"{app_id}-v2-") and t not in (f"{app_id}-control",
                                                             f"{app_id}-window-results")}, topics
    assert f"{app_id}-v2-totals-changelog" in topics

    check_answers(probe.answers, [w.url for w in old], switch_at)

    # a restarted old worker reads epoch 2 and joins it
    again_w1 = dep.worker(1)
    again_w1.wait_ready(180)
    assert_matches_truth(again_w1.url, truth)
    status, body = http_json(again_w1.url + "/api/stores?limit=5")
    assert status == 200 and body["as_of"]["epoch"] == 2


def check_answers(answers: list[Answer], old_urls: list[str], switch_at: float) -> None:
    problems: list[str] = []
    last: dict[tuple, tuple] = {}  # (url, kind, epoch, store) -> totals
    switched: dict[str, float] = {}  # old url -> first epoch-2 answer
    counts: dict[tuple, int] = {}
    for a in sorted(answers, key=lambda a: a.at):
        where = f"{a.url}{a.path} at {time.strftime('%H:%M:%S', time.localtime(a.at))}"
        counts[(a.status, a.epoch)] = counts.get((a.status, a.epoch), 0) + 1
        if a.status == 0:
            # an old worker's URL goes quiet only once it retired (forwarded RETIRE_S first)
            if not (a.url in old_urls and a.at >= switch_at + RETIRE_S - 1):
                problems.append(f"{where}: no answer {a.error}")
            continue
        if a.status == 404 and a.path.startswith("/api/stores/"):
            store = a.path.split("/")[3].split("?")[0]
            if not any(k[0] == a.url and k[3] == store for k in last):
                continue  # not seen yet (no order of it so far): right
        if a.status != 200:
            problems.append(f"{where}: status {a.status} {a.error}")
            continue
        if a.epoch not in (1, 2):
            problems.append(f"{where}: as_of.epoch {a.epoch}")
            continue
        if a.url in old_urls:
            if a.epoch == 2:
                switched.setdefault(a.url, a.at)
            elif a.url in switched:
                problems.append(f"{where}: epoch 1 again after epoch 2")
        if a.epoch == 1 and a.at > switch_at + 5:
            problems.append(f"{where}: epoch 1 answer {a.at - switch_at:.1f} s after the switch")
        kind = a.path.split("?")[0].count("/")
        for store, totals in a.totals.items():
            key = (a.url, kind, a.epoch, store)
            before = last.get(key)
            if before is not None and any(n < b for n, b in zip(totals, before)):
                problems.append(f"{where}: {store} epoch {a.epoch} went back {before} -> "
                                f"{totals}")
            last[key] = totals
    print(f"answers by (status, epoch): {sorted(counts.items(), key=str)}")
    assert set(switched) == set(old_urls), f"no epoch-2 answer from {set(old_urls) - set(switched)}"
    first = min(switched.values()) - switch_at
    print(f"SWITCH TIME: {first * 1000:.0f} ms from the switch record to the first epoch-2 "
          f"answer from an old worker's URL (per URL: "
          f"{ {u: round((t - switch_at) * 1000) for u, t in switched.items()} } ms)")
    assert not problems, f"{len(problems)} problems, first: {problems[:10]}"


def test_a_cancelled_shadow_stops_its_workers_and_its_number_is_not_reused(
        deployment: Deployment, tmp_path: Path) -> None:
    dep = deployment
    app_id = dep.env["ORDERSTATS_APP_ID"]
    truth = dep.generate(tmp_path / "t.json", "--count", "2000", "--stores", "20", "--rate",
                         "0", "--span", "600")
    serving = dep.worker(1)
    serving.wait_ready()
    assert "shadow epoch 2 is pending" in dep.run(
        "replay", "--rebuild", "--shadow", "--to-earliest", "--no-wait").stdout
    shadow = shadow_worker(dep, 2)
    shadow.wait_ready(180)
    cancelled = dep.run("replay", "--cancel-shadow", timeout=120)
    assert "shadow epoch 2 cancelled" in cancelled.stdout, cancelled.stdout
    assert shadow.proc.wait(60) == 0, shadow.log_tail()
    assert not (shadow.data_dir / app_id / "v2").exists()
    assert "epoch 2 retired" in cancelled.stdout, cancelled.stdout
    assert not {t for t in topic_names(dep.broker) if t.startswith(f"{app_id}-v2-")}
    # the serving epoch never noticed; the next shadow is epoch 3
    status, body = http_json(serving.url + "/api/stores?limit=5")
    assert status == 200 and body["as_of"]["epoch"] == 1
    assert_matches_truth(serving.url, truth)
    assert "shadow epoch 3 is pending" in dep.run(
        "replay", "--rebuild", "--shadow", "--to-earliest", "--no-wait").stdout
    assert serving.stop() == 0
