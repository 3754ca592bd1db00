import pytest

from tables.windows import TumblingWindows, window_start_s


def test_windows_are_aligned_half_open_intervals():
    assert window_start_s(1_700_000_039_999, 60) == 1_699_999_980
    assert window_start_s(1_700_000_040_000, 60) == 1_700_000_040
    assert window_start_s(1_700_000_099_999, 60) == 1_700_000_040
    assert TumblingWindows(3600, 3600).start_s(1_700_000_000_000) == 1_699_999_200


def test_a_window_is_retained_while_part_of_it_is_younger_than_the_cutoff():
    w = TumblingWindows(60, 600)
    cutoff = w.late_cutoff_ms(now_ms=1_000_000_000)
    assert cutoff == 999_400_000
    assert w.is_retained(999_341, cutoff)  # [999341, 999401) still holds retained time
    assert not w.is_retained(999_340, cutoff)  # [999340, 999400): all of it is late


@pytest.mark.parametrize("size, retention, word", [(0, 60, "size_s"), (60, 59, "retention_s")])
def test_bad_windows_are_refused_naming_the_argument(size, retention, word):
    with pytest.raises(ValueError, match=word):
        TumblingWindows(size, retention)
