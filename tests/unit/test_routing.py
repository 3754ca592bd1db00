import zlib

import orjson
import pytest

from agents.routing import KeyRouting


# murmur2 of these keys as Kafka's Java client computes it (Utils.murmur2, the vectors of
# Kafka's UtilsTest.testMurmur2): an oracle independent of the aiokafka function under test.
JAVA_MURMUR2 = {"21": -973932308, "foobar": -790332482,
                "a-little-bit-long-string": -985981536,
                "a-little-bit-longer-string": -1486304829,
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, "abc": 479470107}


@pytest.mark.parametrize("partitions", [1, 8, 12, 100])
def test_a_store_lives_where_kafkas_java_partitioner_puts_its_raw_key(partitions):
    routing = KeyRouting("raw", partitions)
    for store_id, java_hash in JAVA_MURMUR2.items():
        assert routing.key(store_id) == store_id.encode()
        # Kafka's toPositive(murmur2(key)) % numPartitions
        assert routing.partition(store_id) == (java_hash & 0x7FFFFFFF) % partitions, store_id


def test_json_keys_hash_the_json_spelling():
    routing = KeyRouting("json", 8)
    assert routing.key("st-1") == b'"st-1"'
    assert routing.partition("st-1") == KeyRouting("raw", 8).partition('"st-1"')


def test_only_the_right_key_in_the_right_partition_is_direct():
    routing = KeyRouting("raw", 8)
    p = routing.partition("st-1")
    assert routing.is_direct(b"st-1", p, "st-1")
    assert not routing.is_direct(None, p, "st-1")  # no key
    assert not routing.is_direct(orjson.dumps("st-1"), p, "st-1")  # another key format
    assert not routing.is_direct(b"st-2", p, "st-1")  # a key that is not the store
    crc = zlib.crc32(b"st-1") % 8  # librdkafka's partitioner, where it differs
    if crc != p:
        assert not routing.is_direct(b"st-1", crc, "st-1")


def test_unknown_key_format_is_refused():
    with pytest.raises(ValueError, match="raw or json"):
        KeyRouting("avro", 8)
