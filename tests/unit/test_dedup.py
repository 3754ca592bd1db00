from tables.dedup import DedupIndex, Segment, Verdict


def test_first_occurrence_is_new_same_offset_is_replay_other_offset_is_duplicate():
    index = DedupIndex(horizon_ms=1000)
    assert index.check("s", "o-1", 10) is Verdict.NEW
    assert index.check("s", "o-1", 10) is Verdict.REPLAY
    assert index.check("s", "o-1", 11) is Verdict.DUPLICATE
    assert index.check("other-store", "o-1", 12) is Verdict.NEW


def test_sealed_segments_reload_into_the_same_verdicts():
    index = DedupIndex(horizon_ms=1000)
    index.check("s", "o-1", 10)
    index.check("s", "o-2", 11)
    segment = index.seal(seq=0, watermark_ms=5000)
    assert segment == Segment(0, 5000, [("s", "o-1", 10), ("s", "o-2", 11)])
    assert index.seal(seq=1, watermark_ms=5000) is None  # nothing new
    reloaded = DedupIndex(horizon_ms=1000)
    reloaded.load([segment])
    assert reloaded.check("s", "o-1", 10) is Verdict.REPLAY
    assert reloaded.check("s", "o-2", 99) is Verdict.DUPLICATE


def test_segments_expire_by_stream_time():
    index = DedupIndex(horizon_ms=1000)
    index.check("s", "o-1", 1)
    index.seal(0, watermark_ms=5000)
    index.check("s", "o-2", 2)
    index.seal(1, watermark_ms=5800)
    assert index.expire(watermark_ms=6000) == []
    assert index.expire(watermark_ms=6001) == [0]
    assert len(index) == 1
    assert index.check("s", "o-1", 3) is Verdict.NEW  # forgotten past the horizon
    assert index.check("s", "o-2", 4) is Verdict.DUPLICATE
