from tables.windows import is_retained, late_cutoff_ms, window_start_s


def test_windows_are_aligned_half_open_intervals():
    assert window_start_s(1_700_000_039_999, 60) == 1_699_999_980
    assert window_start_s(1_700_000_040_000, 60) == 1_700_000_040
    assert window_start_s(1_700_000_099_999, 60) == 1_700_000_040
    assert window_start_s(1_700_000_000_000, 3600) == 1_699_999_200


def test_a_window_is_retained_while_part_of_it_is_younger_than_the_cutoff():
    cutoff = late_cutoff_ms(now_ms=1_000_000_000, retention_s=600)
    assert cutoff == 999_400_000
    assert is_retained(999_341, 60, cutoff)  # [999341, 999401) still holds retained time
    assert not is_retained(999_340, 60, cutoff)  # [999340, 999400): all of it is late
