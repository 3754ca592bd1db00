"""The benchmark's cardinality rows: each store count's figures beside the main run's."""

from bench.cardinality import cardinality_rows
from bench.measurement import Measurement
from bench.report import cardinality_markdown, latency_markdown, summarize


def _m(name: str, seconds: float, cpu_s: float) -> Measurement:
    return Measurement(name, 100_000, 10.0, 10.0 + seconds, 10.0 + seconds, cpu_s, 1.0, 200.0,
                       True)


def _runs(os_s: float, os_cpu: float, quix_s: float) -> list[dict[str, Measurement]]:
    return [{"orderstats": _m("orderstats", os_s, os_cpu), "quix": _m("quix", quix_s, 9.0)}
            for _ in range(3)]


def test_rows_compare_each_store_count_with_the_main_run_per_contender() -> None:
    base = summarize(_runs(5.0, 3.0, 10.0))  # 20,000 ev/s, 30 CPU s per million
    more = summarize(_runs(8.0, 6.0, 10.0))  # 12,500 ev/s, 60 CPU s per million
    rows = cardinality_rows(1000, base, {100_000: more})
    assert [(r["stores"], r["contender"]) for r in rows] == [
        (1000, "orderstats"), (1000, "quix"), (100_000, "orderstats"), (100_000, "quix")]
    high = rows[2]
    assert high["events_per_s"]["median"] == 12_500
    assert high["cpu_s_per_million"] == 60.0
    assert high["events_per_s_vs_base"] == 12_500 / 20_000
    assert high["cpu_per_event_vs_base"] == 2.0
    assert high["x_quix"]["median"] == 1.25
    assert rows[0]["events_per_s_vs_base"] == 1.0


def test_markdown_has_a_row_per_store_count_and_contender() -> None:
    rows = cardinality_rows(1000, summarize(_runs(5.0, 3.0, 10.0)),
                            {10_000: summarize(_runs(6.0, 4.0, 10.0))})
    text = cardinality_markdown(rows)
    assert "| 10,000 | orderstats | 16,667 (16,667-16,667) | 40.0 | 0.83 | 1.33 | 1.67" in text
    assert "| 1,000 | quix | 10,000" in text and "| - |" in text  # quix has no x quix


def test_latency_markdown_gives_the_cores_of_each_process() -> None:
    lat = [{"offered_per_s": 20_000, "probes": 150, "p50_s": 0.31, "p99_s": 0.98,
            "max_s": 1.2, "cpu_cores_used": {"worker": 0.86, "broker": 0.15,
                                             "generator": None}}]
    assert "| 20,000 | 150 | 310 | 980 | 1200 | 0.86 | 0.15 | - |" in latency_markdown(lat)
