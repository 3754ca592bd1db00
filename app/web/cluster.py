"""Who owns what and how to ask them: ownership, forwarding and fan-out over Faust's router.

Modelled on Kafka Streams' MetadataService: the routes stay thin and ask this class which
worker owns a store, forward a request there, or ask every worker and collect the answers.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import aiohttp
import faust
import orjson
from faust.types import TP
from faust.web import Request

from app import metrics
from app.settings import Settings
from app.timefmt import format_iso_ms
from app.web.params import ApiError
from agents.routing import KeyRouting
from app.web.reader import StatsReader
from tables.schema import PROGRESS, TOTALS, changelog_topic

ROUTED_HEADER = "X-Orderstats-Routed"
PEER_TIMEOUT_S = 5.0
# orderstats_events_total's outcomes (agents/batch.py), counted by this worker since it started
EVENT_OUTCOMES = ("counted", "late", "duplicate", "invalid", "replayed")


class Cluster:
    """A thin layer over Faust's router and assignor."""

    def __init__(self, app: faust.App, settings: Settings, routing: KeyRouting) -> None:
        self.app = app
        self.settings = settings
        self.routing = routing
        self._session: aiohttp.ClientSession | None = None
        self.watch: Any = None  # app/epoch_watch.py's EpochWatch, set by a worker

    @property
    def epoch(self) -> int:
        """The state epoch this worker serves (app/kafka/epoch.py: Faust's app version)."""
        return int(self.app.conf.version)

    async def rebuild_status(self) -> dict[str, Any]:
        """The ``rebuild`` part of /api/cluster: current and shadow epoch, its progress."""
        if self.watch is None:
            return {"epoch": self.epoch}
        return await self.watch.status()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S))
        return self._session

    def active_partitions(self) -> list[int]:
        topic = self.settings.orders_topic
        return sorted(tp.partition for tp in self.app.assignor.assigned_actives()
                      if tp.topic == topic)

    def standby_partitions(self) -> list[int]:
        # Standbys are changelog partitions; the progress table's stand for the partition.
        topic = changelog_topic(self.app.conf.id, PROGRESS)
        return sorted(tp.partition for tp in self.app.assignor.assigned_standbys()
                      if tp.topic == topic)

    def log_end(self, partition: int) -> int | None:
        try:
            return self.app.consumer.highwater(TP(self.settings.orders_topic, partition))
        except Exception:  # not assigned here (any more): unknown, not an error
            return None

    def recovering(self) -> bool:
        return bool(self.app.in_recovery) or not self.app.tables.recovery.completed.is_set()

    def refresh_metrics(self, reader: StatsReader) -> None:
        """Set the gauges read at scrape time: lag per partition, recovery, table sizes."""
        metrics.RECOVERING.set(1 if self.recovering() else 0)
        memory = {"memtables": 0, "table_readers": 0, "block_cache": 0}
        for store in reader.tables.all:
            metrics.TABLE_KEYS.labels(store.table.name).set(store.estimated_keys())
            for kind, size in store.memory_bytes().items():
                memory[kind] = max(memory[kind], size) if kind == "block_cache" \
                    else memory[kind] + size
        for kind, size in memory.items():
            metrics.ROCKSDB_MEMORY.labels(kind).set(size)
        self.local_status(reader)

    def ready(self) -> bool:
        return (not self.app.rebalancing
                and self.app.tables.recovery.completed.is_set()
                and bool(self.app.consumer.assignment()))

    def self_url(self) -> str:
        return str(self.app.conf.canonical_url).rstrip("/")

    def owner_of(self, store_id: str) -> str:
        """The worker owning the store's partition: the key hashed as producers hash it."""
        topic = changelog_topic(self.app.conf.id, TOTALS)
        try:
            return str(self.app.assignor.key_store(topic, self.routing.key(store_id))).rstrip("/")
        except KeyError:
            raise ApiError(503, "rebalancing", "partition ownership is changing, retry") from None

    def peers(self) -> list[str]:
        """Web URLs of every worker the assignor knows (this one included)."""
        urls = {str(url).rstrip("/") for url in self.app.router.tables_metadata()}
        urls.add(self.self_url())
        return sorted(urls)

    def peer_headers(self) -> dict[str, str]:
        """Headers of a call to another worker: routed, and the read token if one is set."""
        return {ROUTED_HEADER: "1", **self.settings.access.peer_headers()}

    async def forward(self, url: str, request: Request) -> tuple[int, bytes]:
        target = url + request.path_qs
        try:
            async with self.session.get(target, headers=self.peer_headers()) as resp:
                return resp.status, await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise ApiError(503, "owner_unreachable",
                           f"the worker owning this store ({url}) did not answer: "
                           f"{type(exc).__name__}") from None

    async def fetch_json(self, url: str) -> Any:
        async with self.session.get(url, headers=self.peer_headers()) as resp:
            resp.raise_for_status()
            return orjson.loads(await resp.read())

    async def fan_out(self, path: str, local: Callable[[], Any]) -> dict[str, Any]:
        """Ask every worker; a worker that fails is recorded as such, not hidden."""
        results: dict[str, Any] = {}

        async def ask(url: str) -> None:
            if url == self.self_url():
                results[url] = local()
                return
            try:
                results[url] = await self.fetch_json(url + path)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                results[url] = {"error": f"{type(exc).__name__}: {exc}"}

        await asyncio.gather(*(ask(url) for url in self.peers()))
        return results

    def local_status(self, reader: StatsReader) -> dict[str, Any]:
        """This worker: its partitions (active, standby), their lag and watermark, recovery."""
        active, standby = self.active_partitions(), self.standby_partitions()
        progress = reader.progress(sorted(set(active) | set(standby)))
        partitions = {}
        for p in sorted(set(active) | set(standby)):
            last, watermark = (progress[p][0], progress[p][1]) if p in progress else (-1, 0)
            end = self.log_end(p) if p in active else None
            partitions[str(p)] = {
                "role": "active" if p in active else "standby",
                "last_offset": last, "log_end": end,
                "lag": None if end is None else max(0, end - (last + 1)),
                "watermark": format_iso_ms(watermark) if watermark else None,
                "lost_offsets": int(metrics.REGISTRY.get_sample_value(
                    "orderstats_lost_offsets_total",
                    {"topic": self.settings.orders_topic, "partition": str(p)}) or 0)}
        metrics.CONSUMER_LAG.clear()  # partitions revoked since the last call: no stale series
        for p, part in partitions.items():
            if part["lag"] is not None:
                metrics.CONSUMER_LAG.labels(p).set(part["lag"])
        return {"url": self.self_url(), "ready": self.ready(),
                "recovering": self.recovering(), "active": active, "standby": standby,
                "partitions": partitions,
                "repartitioned": int(metrics.REGISTRY.get_sample_value(
                    "orderstats_repartitioned_total") or 0),
                "events": {outcome: int(metrics.REGISTRY.get_sample_value(
                    "orderstats_events_total", {"outcome": outcome}) or 0)
                    for outcome in EVENT_OUTCOMES}}
