"""A thread that asks workers for stores while partitions move, and records every wrong answer.

While the generator only adds orders, a store's totals never go down and a store once seen is
never unknown again; so any answer is either right (200, totals at or above the last seen)
or a 503 that says when to retry (``Retry-After``). Anything else is a problem: a total that
went backwards, a 503 without Retry-After, a 404 for a store already seen, another status.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import orjson
from aiokafka.partitioner import murmur2

TOTALS = ("orders", "revenue", "items", "late")


def store_per_partition(partitions: int, stores: int) -> dict[int, str]:
    """The busiest generated store (lowest index: Zipf) of each partition, keyed raw as
    Kafka's default partitioner hashes it (murmur2, as the Java client does)."""
    found: dict[int, str] = {}
    for i in range(stores):
        store_id = f"s-{i:04d}"
        found.setdefault((murmur2(store_id.encode()) & 0x7FFFFFFF) % partitions, store_id)
    missing = set(range(partitions)) - set(found)
    assert not missing, f"no generated store on partitions {missing}"
    return found


def get(url: str, timeout: float) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@dataclass
class AnswerProbe:
    """Polls ``stores`` on every URL in ``urls`` (change the list as workers come and go)."""

    urls: list[str]
    stores: list[str]
    interval_s: float = 0.05
    problems: list[str] = field(default_factory=list)
    answers: dict[int, int] = field(default_factory=dict)  # status -> how many
    last: dict[str, tuple[int, ...]] = field(default_factory=dict)  # store -> its totals
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "AnswerProbe":
        self._thread = threading.Thread(target=self._run, daemon=True, name="answer-probe")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            for url in list(self.urls):
                for store_id in self.stores:
                    self.ask(url, store_id)
            self._stop.wait(self.interval_s)

    def ask(self, url: str, store_id: str) -> None:
        where = f"{url} {store_id} at {time.strftime('%H:%M:%S')}"
        try:
            status, headers, body = get(f"{url}/api/stores/{store_id}?limit=1", timeout=15)
        except OSError as exc:
            self.problems.append(f"{where}: no answer ({exc!r})")
            return
        self.answers[status] = self.answers.get(status, 0) + 1
        if status == 503:
            if not headers.get("Retry-After"):
                self.problems.append(f"{where}: 503 without Retry-After: {body[:200]!r}")
        elif status == 404:
            if store_id in self.last:
                self.problems.append(f"{where}: 404 for a store already seen")
        elif status == 200:
            got = orjson.loads(body)["totals"]
            totals = tuple(got[k] for k in TOTALS)
            before = self.last.get(store_id)
            if before is not None and any(n < b for n, b in zip(totals, before)):
                self.problems.append(f"{where}: totals went backwards {before} -> {totals}")
            else:
                self.last[store_id] = totals
        else:
            self.problems.append(f"{where}: status {status}: {body[:200]!r}")
