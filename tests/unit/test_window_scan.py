"""agents/window_scan.py: a scan in a thread of its own, one at a time, stoppable."""

import asyncio
import threading
import time

import pytest

from agents.window_scan import WindowScan


def test_the_result_reaches_the_loop():
    async def main():
        scan = WindowScan(lambda stop: ("found", threading.current_thread().name), "scan-t")
        return await scan.done
    assert asyncio.run(main()) == ("found", "scan-t")


def test_a_failure_reaches_the_loop():
    def boom(stop):
        raise OSError("disk")

    async def main():
        await WindowScan(boom, "scan-f").done
    with pytest.raises(OSError, match="disk"):
        asyncio.run(main())


def test_stopped_waits_until_the_thread_no_longer_reads():
    reading = threading.Event()
    finished = []

    def slow(stop):
        reading.set()
        while not stop.is_set():
            time.sleep(0.001)
        finished.append(True)
        return None

    async def main():
        scan = WindowScan(slow, "scan-s")
        await asyncio.to_thread(reading.wait, 5)
        await scan.stopped()
        return finished, scan.done.result()
    assert asyncio.run(main()) == ([True], None)


def test_scans_run_one_at_a_time_and_the_loop_keeps_going():
    inside = []
    overlaps = []

    def scan(stop):
        inside.append(1)
        overlaps.append(len(inside))
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:  # holds the GIL most of the time, like a scan
            sum(range(1000))
        inside.pop()
        return len(overlaps)

    async def main():
        scans = [WindowScan(scan, f"scan-{i}") for i in range(3)]
        ticks = 0
        while not all(s.done.done() for s in scans):
            await asyncio.sleep(0.01)
            ticks += 1
        return ticks, sorted(s.done.result() for s in scans)
    ticks, results = asyncio.run(main())
    assert max(overlaps) == 1 and results == [1, 2, 3]
    assert ticks >= 20  # the loop ran beside them (0.6 s of scans, 10 ms sleeps)


def test_a_scan_waiting_for_another_stops_at_once():
    release = threading.Event()
    reading = threading.Event()

    def long_scan(stop):
        reading.set()
        release.wait(5)
        return "first"

    async def main():
        first = WindowScan(long_scan, "scan-long")
        await asyncio.to_thread(reading.wait, 5)
        waiting = WindowScan(lambda stop: "never", "scan-waiting")
        t0 = time.monotonic()
        await waiting.stopped()  # not after the first scan: it is still running
        took = time.monotonic() - t0
        release.set()
        return took, waiting.done.result(), await first.done
    took, second, first = asyncio.run(main())
    assert took < 1 and second is None and first == "first"
