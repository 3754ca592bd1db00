"""Which partition a store belongs to, and whether a record already sits there.

A store's state lives in one partition: the one Kafka's default partitioner (murmur2, as the
Java client and aiokafka use) gives the store's key in ``ORDERSTATS_KEY_FORMAT``. Queries
are routed by the same hash. A record is on the *direct* path when its key is exactly that
key and it arrived in that partition; any other record (no key, another key format, or a
producer whose partitioner hashes differently, like librdkafka's CRC32) is forwarded to the
repartition topic, keyed and partitioned the direct way.
"""

from __future__ import annotations

import orjson
from aiokafka.partitioner import murmur2


class KeyRouting:
    """Store -> key bytes and partition, for one key format and partition count."""

    def __init__(self, key_format: str, partitions: int) -> None:
        if key_format not in ("raw", "json"):
            raise ValueError(f"key format must be raw or json, got {key_format!r}")
        self.key_format = key_format
        self.partitions = partitions
        self._partition: dict[str, int] = {}  # murmur2 in Python costs ~5 us: once per store

    def key(self, store_id: str) -> bytes:
        """The key a producer should send for ``store_id``."""
        return store_id.encode() if self.key_format == "raw" else orjson.dumps(store_id)

    def partition(self, store_id: str) -> int:
        """The partition holding ``store_id``'s state (Kafka's default partitioner)."""
        p = self._partition.get(store_id)
        if p is None:
            if len(self._partition) > 1_000_000:
                self._partition.clear()
            p = self._partition[store_id] = (murmur2(self.key(store_id)) & 0x7FFFFFFF) \
                % self.partitions
        return p

    def is_direct(self, key: bytes | None, partition: int, store_id: str) -> bool:
        """Whether a record of ``store_id`` can be counted where it arrived."""
        return key is not None and partition == self.partition(store_id) \
            and key == self.key(store_id)
