"""Window boundaries and close times as the API spells them (values worked out by hand)."""

from __future__ import annotations

import pytest

from app.timefmt import format_iso_ms, format_iso_s, parse_iso_ms


@pytest.mark.parametrize("epoch_s, text", [
    (0, "1970-01-01T00:00:00Z"),
    (86_399, "1970-01-01T23:59:59Z"),
    (951_782_400, "2000-02-29T00:00:00Z"),  # a leap day
    (1_795_000_000, "2026-11-18T11:06:40Z"),
])
def test_seconds_are_formatted_in_utc_every_time(epoch_s, text):
    assert format_iso_s(epoch_s) == text
    assert format_iso_s(epoch_s) == text  # the cached answer is the same
    assert parse_iso_ms(text) == epoch_s * 1000


def test_milliseconds_keep_three_digits():
    assert format_iso_ms(1_795_000_000_007) == "2026-11-18T11:06:40.007Z"
    assert parse_iso_ms("2026-11-18T11:06:40.007Z") == 1_795_000_000_007
