"""The closer's scan at a partition's load (agents/closer.py): what it finds in the stored
windows, with the closed-and-published ones skipped undecoded."""

import orjson

from agents.closer import WindowCloser
from tables import keys
from tables.values import WindowValue
from tables.windows import NO_ROLLUPS, TumblingWindows

T0 = 1_794_970_800_000  # 2026-11-18T03:00:00Z
START = T0 // 1000


class _Windows:
    """The raw (key, value) pairs of one partition's windows table, in key order."""

    def __init__(self, values: dict[tuple, WindowValue]) -> None:
        self.rows = sorted((keys.encode(list(k)), orjson.dumps(v.dump()))
                           for k, v in values.items())
        self.rows.insert(0, (keys.OFFSET_KEY, b"41"))

    def raw_items(self, partition: int):
        return iter([(k, v) for k, v in self.rows if keys.is_table_key(k)])


async def _never(*args):  # pragma: no cover - the scan sends nothing
    raise AssertionError("the scan must not publish")


def test_the_scan_indexes_open_windows_and_finds_closes_not_confirmed():
    open_value = WindowValue(2, {"EUR": 10}, 2, (4, -1))
    values = {
        ("s-1", START): open_value,
        ("s-1", START + 60): open_value.closed(T0 + 1_000),  # confirmed
        ("s-2", START): open_value.closed(T0 + 5_000),  # closed after the confirmed time
        ("s-2", START + 60): open_value.closed(T0 + 1_000).closed(T0 + 6_000),  # re-closed
        ("s-3", START - 600): WindowValue.load([1, 900, 2, 7]),  # an older format: open
        ("s-4", START): WindowValue(1, {"A},1,2,3,4": 5}, 1, (9, 9)).closed(T0),  # confirmed
    }
    closer = WindowCloser(TumblingWindows(60, 86_400), "1m", NO_ROLLUPS, 60, "results", _never)
    found = closer.scan(_Windows(values), 0, T0 + 1_000)  # type: ignore[arg-type]
    assert found.unpublished == {("s-2", START), ("s-2", START + 60)}
    assert sorted(found.opened.due(T0 + 10**9)) == [("s-1", START), ("s-3", START - 600)]


def _state(**fields):
    from types import SimpleNamespace
    from tables.closing import OpenWindows
    return SimpleNamespace(last_event_wall_ms=0, results_confirmed_ms=0, scanned=False, watermark_ms=0,
                           open_windows=OpenWindows(), unpublished=set(),
                           windows_indexed=False, **fields)


def test_nothing_closes_until_the_scan_is_merged_then_both_findings_close():
    """A batch during the scan opens a window; the scan found an older open one. Nothing
    closes before the merge (close times must only grow); after it, both do."""
    closer = WindowCloser(TumblingWindows(60, 86_400), "1m", NO_ROLLUPS, 60, "results", _never)
    state = _state()
    stored_old = WindowValue(1, {"EUR": 5}, 1, (3, -1))
    new = {("s-9", START): WindowValue(2, {"EUR": 9}, 2, (8, -1))}
    late = T0 + 3_600_000  # both windows are long past end + grace
    assert closer.prepare(state, new, {}, late, late, lambda ks: [None] * len(ks), True) == []
    state.watermark_ms = late  # what the batch records
    assert not closer.has_work(state, late)
    assert all(not v.revision for v in new.values())

    scanned = closer.scan(_Windows({("s-1", START - 60): stored_old}), 0, 0)
    closer.merge(state, scanned, publishing=True)
    assert state.windows_indexed and state.scanned
    assert closer.has_work(state, late)
    batch: dict = {}
    published = closer.prepare(state, batch, {}, late, late,
                               lambda ks: [stored_old.dump() if k[0] == "s-1" else
                                           new[k].dump() for k in ks], False)
    assert sorted(published) == [("s-1", START - 60), ("s-9", START)]
    assert all(v.revision == 1 for v in batch.values())
