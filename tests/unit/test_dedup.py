from tables.dedup import DedupIndex, Segment, Verdict


class DictStore:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get_many(self, keys):
        return [self.data.get(k) for k in keys]

    def apply(self, puts, deletes):
        self.data.update(puts)
        for k in deletes:
            self.data.pop(k, None)


def batch(index, *occurrences):
    index.prefetch((s, o) for s, o, _ in occurrences)
    return [index.check(s, o, off) for s, o, off in occurrences]


def test_first_occurrence_is_new_same_offset_is_replay_other_offset_is_duplicate():
    index = DedupIndex(1000, DictStore())
    assert batch(index, ("s", "o-1", 10), ("s", "o-1", 10), ("s", "o-1", 11),
                 ("other-store", "o-1", 12)) == [Verdict.NEW, Verdict.REPLAY,
                                                 Verdict.DUPLICATE, Verdict.NEW]
    index.seal(0, 5000)
    assert batch(index, ("s", "o-1", 10), ("s", "o-1", 99)) == [Verdict.REPLAY,
                                                                 Verdict.DUPLICATE]


def test_a_lost_local_index_is_rebuilt_from_the_segments():
    index = DedupIndex(1000, DictStore())
    batch(index, ("s", "o-1", 10), ("s", "o-2", 11))
    segment = index.seal(seq=0, watermark_ms=5000)
    assert segment == Segment(0, 5000, [("s", "o-1", 10, 0), ("s", "o-2", 11, 0)])
    assert index.seal(seq=1, watermark_ms=5000) is None  # nothing new
    fresh = DedupIndex(1000, DictStore())  # e.g. state restored from changelogs elsewhere
    assert fresh.catch_up([segment]) == 3  # two ids and the marker
    assert batch(fresh, ("s", "o-1", 10), ("s", "o-2", 99)) == [Verdict.REPLAY,
                                                                 Verdict.DUPLICATE]
    assert fresh.catch_up([segment]) == 0  # already indexed


def test_entries_of_segments_that_are_gone_do_not_count():
    store = DictStore()
    index = DedupIndex(1000, store)
    batch(index, ("s", "o-1", 10))
    index.seal(0, 5000)
    later = DedupIndex(1000, store, live={})  # segment 0 was deleted while we were away
    assert batch(later, ("s", "o-1", 20)) == [Verdict.NEW]


def test_segments_expire_by_stream_time_and_take_their_index_entries_along():
    store = DictStore()
    index = DedupIndex(1000, store)
    segments = {}
    batch(index, ("s", "o-1", 1))
    segments[0] = index.seal(0, watermark_ms=5000)
    batch(index, ("s", "o-2", 2))
    segments[1] = index.seal(1, watermark_ms=5800)
    entries_of = lambda seq: segments[seq].entries  # noqa: E731
    assert index.expire(6000, entries_of) == []
    assert index.expire(6001, entries_of) == [0]
    assert batch(index, ("s", "o-1", 3), ("s", "o-2", 4)) == [Verdict.NEW, Verdict.DUPLICATE]
    assert len(store.data) == 2  # o-2 and the marker; the new o-1 is not sealed yet


def test_the_same_offset_of_another_source_is_a_duplicate_not_a_replay():
    index = DedupIndex(1000, DictStore())
    index.prefetch([("s", "o-1")])
    assert index.check("s", "o-1", 10, source=0) is Verdict.NEW
    assert index.check("s", "o-1", 10, source=1) is Verdict.DUPLICATE  # forwarded again
    assert index.check("s", "o-1", 10, source=0) is Verdict.REPLAY


def test_entries_written_before_sources_existed_read_as_the_orders_topic():
    store = DictStore()
    old = Segment(0, 5000, [["s", "o-1", 10]])  # a changelogged segment of the old shape
    index = DedupIndex(1000, store)
    index.catch_up([old])
    index.prefetch([("s", "o-1")])
    assert index.check("s", "o-1", 10, source=0) is Verdict.REPLAY


def test_catch_up_writes_in_chunks_and_the_first_occurrence_wins(monkeypatch):
    import tables.dedup as dedup

    monkeypatch.setattr(dedup, "CATCH_UP_CHUNK", 3)
    store = DictStore()
    writes = []
    apply = store.apply
    store.apply = lambda puts, deletes: (writes.append(len(puts)), apply(puts, deletes))
    segments = [Segment(seq, 1000 + seq, [("s", f"o-{seq}-{i}", seq * 10 + i, 0)
                                          for i in range(2)]) for seq in range(5)]
    segments.append(Segment(5, 2000, [("s", "o-0-0", 99, 1)]))  # seen before: stays at 0
    index = DedupIndex(10_000, store)
    assert index.catch_up(segments) == 11  # ten ids and the marker
    assert max(writes) <= 4  # never the whole horizon at once
    index.prefetch([("s", "o-0-0"), ("s", "o-4-1")])
    assert index.check("s", "o-0-0", 0, 0) is Verdict.REPLAY
    assert index.check("s", "o-4-1", 41, 0) is Verdict.REPLAY


def test_catch_up_memory_does_not_grow_with_the_horizon():
    """A regression check: indexing 4x the ids must not take 4x the memory (it once held
    every id of the horizon, each in a 4 KiB orjson buffer)."""
    import tracemalloc

    def peak(ids: int) -> int:
        segments = (Segment(seq, seq, [("s-1", f"order-{seq}-{i}", seq * 1000 + i, 0)
                                      for i in range(1000)]) for seq in range(ids // 1000))
        index = DedupIndex(10**9, CountingStore())
        tracemalloc.start()
        index.catch_up(segments)
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result

    small, large = peak(20_000), peak(80_000)
    assert large < small * 1.5, (small, large)


class CountingStore:
    """Keeps nothing: only what catch-up holds itself is measured."""

    def get_many(self, keys):
        return [None] * len(keys)

    def apply(self, puts, deletes):
        pass


def test_encoded_keys_and_values_are_exact_size():
    import tracemalloc

    from tables.keys import dumps, encode

    assert dumps([12345, 6, 0]) == b"[12345,6,0]" and encode("s-1") == b'"s-1"'
    tracemalloc.start()
    kept = [dumps([i, 6, 0]) for i in range(1000)]
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(kept) == 1000 and held < 150_000  # orjson's own results: 1-4 MB here
