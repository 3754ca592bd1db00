import zlib

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from agents.routing import KeyRouting


@pytest.mark.parametrize("fmt, key", [("raw", b"st-1"), ("json", b'"st-1"')])
def test_a_store_lives_where_kafkas_default_partitioner_puts_its_key(fmt, key):
    routing = KeyRouting(fmt, 8)
    assert routing.key("st-1") == key
    assert routing.partition("st-1") == DefaultPartitioner()(key, list(range(8)), list(range(8)))


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
