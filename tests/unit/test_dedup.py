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
