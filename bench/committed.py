"""The end of every contender's timed window: its group's committed offsets at the log end.

Polled from the broker, the same way for every contender (one OffsetFetch request every
``interval`` seconds from this runner, nothing asked of the contender itself), so a job is
done when its progress is durable, whatever its framework, commit interval or web API.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


class CommitWatch:
    """Polls ``group``'s committed offsets until every partition of ``ends`` (topic ->
    partition -> log end) is committed at its end; topics of ``follow`` are not complete
    yet (a repartition topic that the job itself fills): their ends are read at each poll.
    :attr:`reached_at` is the wall-clock time of the answer that showed it (0 before)."""

    def __init__(self, broker: str, group: str, ends: Mapping[str, Mapping[int, int]],
                 follow: tuple[str, ...] = (), interval: float = 0.02) -> None:
        self.broker, self.group, self.interval = broker, group, interval
        self.ends = {t: dict(p) for t, p in ends.items()}
        self.follow = follow
        self.reached_at = 0.0
        self.polls = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()),
                                        name="commit-watch", daemon=True)
        self._thread.start()

    def wait(self, timeout: float, alive: Callable[[], bool]) -> bool:
        """Until the offsets reached the end (True), ``alive()`` is false or time is up."""
        deadline = time.monotonic() + timeout
        while not self.reached_at and time.monotonic() < deadline and alive():
            if not self._thread.is_alive():
                break
            self._stop.wait(0.05)
        return bool(self.reached_at)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    async def _run(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.broker)
        ends_reader = AIOKafkaConsumer(bootstrap_servers=self.broker) if self.follow else None
        await admin.start()
        if ends_reader:
            await ends_reader.start()
        coordinator = None
        try:
            while not self._stop.is_set():
                try:
                    if coordinator is None:
                        coordinator = await admin.find_coordinator(self.group)
                    committed = await admin.list_consumer_group_offsets(self.group,
                                                                        coordinator)
                    if ends_reader:
                        await self._read_follow_ends(ends_reader)
                except Exception:  # the group or a topic not there yet, a moved coordinator
                    coordinator = None
                    await asyncio.sleep(self.interval)
                    continue
                now = time.time()
                self.polls += 1
                if self._complete(committed):
                    self.reached_at = now
                    return
                await asyncio.sleep(self.interval)
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            await admin.close()
            if ends_reader:
                await ends_reader.stop()

    async def _read_follow_ends(self, reader: AIOKafkaConsumer) -> None:
        for topic in self.follow:
            parts = reader.partitions_for_topic(topic)
            if not parts:
                await reader._client.force_metadata_update()
                parts = reader.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in parts]
            if tps:
                self.ends[topic] = {tp.partition: o
                                    for tp, o in (await reader.end_offsets(tps)).items()}

    def _complete(self, committed: Mapping[TopicPartition, object]) -> bool:
        if any(not self.ends.get(t) for t in self.follow):
            return False
        for topic, parts in self.ends.items():
            for partition, end in parts.items():
                meta = committed.get(TopicPartition(topic, partition))
                if (meta.offset if meta is not None else 0) < end:
                    return False
        return True
