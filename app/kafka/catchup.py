"""How far a consumer group is from the live end of its topics (a shadow rebuild's progress).

"Caught up" under load cannot mean lag 0: producers keep appending and a group commits
about once a second. It means: in every partition, the group has committed at least the
log end of the previous look (a few seconds ago). ``Lag.passed`` is that rule, pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka import TopicPartition

from app.kafka.clients import Connection, admin, consumer


@dataclass(frozen=True)
class Lag:
    """One look at a group: per (topic, partition), its committed offset and the log end."""

    group: str
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    ends: dict[tuple[str, int], int] = field(default_factory=dict)
    missing_topics: tuple[str, ...] = ()  # not created yet (no worker of the group ran)

    def lag(self, tp: tuple[str, int]) -> int:
        return max(0, self.ends[tp] - self.committed.get(tp, 0))

    @property
    def total(self) -> int:
        return sum(self.lag(tp) for tp in self.ends)

    def passed(self, before: "Lag | None") -> bool:
        """Every partition committed at or past the log end ``before`` saw (and nothing
        missing): the group is within one look of the live end."""
        if before is None or self.missing_topics or before.missing_topics:
            return False
        return all(self.committed.get(tp, -1) >= end for tp, end in before.ends.items())

    def as_json(self, before: "Lag | None" = None) -> dict:
        topics: dict[str, dict[str, int]] = {}
        for topic, p in sorted(self.ends):
            topics.setdefault(topic, {})[str(p)] = self.lag((topic, p))
        return {"group": self.group, "lag": topics, "total_lag": self.total,
                "missing_topics": list(self.missing_topics),
                "caught_up": self.passed(before)}


async def measure(conn: Connection, group: str, topics: list[str]) -> Lag:
    """The group's committed offsets and the log ends of ``topics`` (one look)."""
    async with admin(conn) as client:
        described = {d["topic"]: d for d in await client.describe_topics(topics)}
        offsets = await client.list_consumer_group_offsets(group)
    tps = [TopicPartition(t, p["partition"]) for t in topics
           for p in described.get(t, {}).get("partitions", [])
           if not described[t].get("error_code")]
    missing = tuple(t for t in topics if not any(tp.topic == t for tp in tps))
    async with consumer(conn) as client:
        ends = await client.end_offsets(tps) if tps else {}
        starts = await client.beginning_offsets(tps) if tps else {}
    committed = {}
    for tp in tps:
        meta = offsets.get(tp)
        # never committed: the group would start at the log start (auto_offset_reset earliest)
        committed[(tp.topic, tp.partition)] = meta.offset if meta is not None and \
            meta.offset >= 0 else starts[tp]
    return Lag(group, committed, {(tp.topic, tp.partition): ends[tp] for tp in tps}, missing)
