"""app/faust_ext/native_memory.py: glibc malloc tuning that degrades to nothing elsewhere."""

from __future__ import annotations

import asyncio

import pytest

from app.faust_ext import native_memory


def test_settings_default_on_and_read_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDERSTATS_MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("ORDERSTATS_MALLOC_TRIM_S", raising=False)
    monkeypatch.delenv("ORDERSTATS_MALLOC_MMAP_THRESHOLD", raising=False)
    assert native_memory.mmap_threshold() == native_memory.MMAP_THRESHOLD_DEFAULT > 0
    assert native_memory.arena_max() == native_memory.ARENA_MAX_DEFAULT > 0
    assert native_memory.trim_interval_s() == native_memory.TRIM_INTERVAL_DEFAULT_S > 0
    monkeypatch.setenv("ORDERSTATS_MALLOC_ARENA_MAX", "0")
    monkeypatch.setenv("ORDERSTATS_MALLOC_TRIM_S", "2.5")
    monkeypatch.setenv("ORDERSTATS_MALLOC_MMAP_THRESHOLD", "0")
    assert native_memory.mmap_threshold() == 0
    assert native_memory.arena_max() == 0
    assert native_memory.trim_interval_s() == 2.5
    monkeypatch.setenv("ORDERSTATS_MALLOC_TRIM_S", "often")  # not a number: the default
    assert native_memory.trim_interval_s() == native_memory.TRIM_INTERVAL_DEFAULT_S


def test_without_glibc_everything_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native_memory, "glibc", lambda: None)
    assert native_memory.limit_arenas(2) is False
    assert native_memory.fix_mmap_threshold(131072) is False
    assert native_memory.trim() is False
    asyncio.run(asyncio.wait_for(native_memory.trim_periodically(0.01), 1))  # returns at once


def test_zero_turns_each_knob_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert native_memory.limit_arenas(0) is False
    assert native_memory.fix_mmap_threshold(0) is False
    asyncio.run(asyncio.wait_for(native_memory.trim_periodically(0), 1))


@pytest.mark.skipif(native_memory.glibc() is None, reason="not glibc")
def test_on_glibc_the_calls_go_through() -> None:
    assert native_memory.limit_arenas(8) is True  # glibc's own default on one core
    assert native_memory.fix_mmap_threshold(128 * 1024) is True  # glibc's initial value
    native_memory.trim()  # True or False (nothing to give back): it must not fail

    async def a_few_trims() -> None:
        task = asyncio.create_task(native_memory.trim_periodically(0.01))
        await asyncio.sleep(0.05)
        assert not task.done()
        task.cancel()

    asyncio.run(a_few_trims())
