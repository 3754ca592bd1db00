"""The benchmark: one broker, one pre-produced dataset, every contender, correctness checked.

    scripts/bench [--events 1000000] [--repeat 7] [--contenders ...] [--quick]

Every repetition runs every contender once, in an order rotated by one each repetition. A
contender that is not exact (any window's orders, revenue or items differ from the truth, or
it never commits the log end) fails the benchmark at once: no median hides it. Prints a
markdown table (medians with confidence intervals, ratios within each repetition) and writes
it with the raw figures to bench-results/.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

from app.kafka.clients import bootstrap_servers
from bench.broker_pid import find_broker_pid
from bench.cardinality import cardinality_rows
from bench.contenders import BASELINE, CONTENDERS, HOSTILE, UNKEYED, run_contender, wait_quiet
from bench.dataset import Dataset, produce_dataset
from bench.full_state import full_steady
from bench.measurement import Measurement
from bench.phases import PROBE_POLL_S, burst, latency, recovery, steady
from bench.report import (cardinality_markdown, code_version, latency_markdown, machine,
                          markdown, summarize)


def repetitions(a: argparse.Namespace, contenders: list[str], data: Dataset, broker: str,
                broker_pid: int | None, work: Path, meta: dict, stamp: str
                ) -> list[dict[str, Measurement]]:
    """Every contender once per repetition, in an order rotated by one each time; the first
    run that is not exact ends the benchmark (written as -FAILED.json), no median hides it."""
    runs: list[dict[str, Measurement]] = []
    for rep in range(a.repeat):
        run: dict[str, Measurement] = {}
        shift = rep % len(contenders)
        for name in [*contenders[shift:], *contenders[:shift]]:
            m = run_contender(name, broker, broker_pid, data, work, a.timeout,
                              baseline=a.baseline or None)
            print(f"  run {rep + 1}/{a.repeat} {name:18s} {m.events_per_s:>9,.0f} ev/s "
                  f"(processed {m.processed_events_per_s:>9,.0f})  cpu {m.cpu_s or 0:6.1f} s  "
                  f"broker {m.broker_cpu_s or 0:5.1f} s  rss {m.peak_rss_mb or 0:5.0f} MB  "
                  f"{'exact' if m.exact else 'NOT EXACT'}", flush=True)
            run[name] = m
            if not m.exact:
                failed = {"meta": meta, "failed": m.to_json(),
                          "runs": [{k: x.to_json() for k, x in r.items()}
                                   for r in [*runs, run]]}
                path = a.out / f"bench-{stamp}-FAILED.json"
                path.write_bytes(orjson.dumps(failed, option=orjson.OPT_INDENT_2))
                sys.exit(f"\nBENCHMARK FAILED: {name} was not exact in repetition {rep + 1} "
                         f"at {data.stores:,} stores (first problems: {m.problems[:3]}); "
                         f"nothing is reported as a median. Details: {path}")
            wait_quiet()
        runs.append(run)
    return runs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--broker", default="kafka://127.0.0.1:9092")
    p.add_argument("--broker-pid", type=int, default=0, help="the broker's process, whose "
                   "CPU is measured (default: the local process listening on its port)")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--full", action="store_true", help="1,000,000 events (the default)")
    p.add_argument("--quick", action="store_true", help="a small run while developing: "
                   "50,000 events, 2 repetitions, no latency or recovery phases")
    p.add_argument("--stores", type=int, default=1000)
    p.add_argument("--cardinality", type=int, nargs="*", default=[], metavar="STORES",
                   help="also run every contender on the same number of events over this "
                   "many stores (e.g. 10000 100000): rows beside the main run's")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--timeout", type=float, default=3600,
                   help="seconds a contender may take to commit the log end")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    p.add_argument("--latency-rates", type=int, nargs="*", default=[5000, 20000])
    p.add_argument("--latency-seconds", type=float, default=40,
                   help="seconds of load per rate; probes run from 10 s in (LOAD_SETTLE_S)")
    p.add_argument("--probe-poll-s", type=float, nargs="+", default=[PROBE_POLL_S],
                   help="how often a latency probe asks for its store; several values run "
                   "each rate once per value, side by side")
    p.add_argument("--recovery-events", type=int, default=1_000_000,
                   help="events of state for the recovery/replay run (0 = skip)")
    p.add_argument("--burst-events", type=int, default=0,
                   help="events produced at once into a slowed worker: lag and peak RSS "
                   "(0 = skip; the memory check uses 500000)")
    p.add_argument("--steady-events", type=int, default=0,
                   help="orders over 24 h and --steady-stores stores: the worker's RSS while "
                   "serving with a day of windows on disk (0 = skip)")
    p.add_argument("--steady-stores", type=int, default=100_000)
    p.add_argument("--full-day-stores", type=int, default=0,
                   help="the full-size steady state: every one of this many stores with "
                   "every minute of a day on disk (100000: 147 M windows, about 20 min to "
                   "build; 0 = skip)")
    p.add_argument("--out", type=Path, default=Path("bench-results"))
    p.add_argument("--unkeyed", action="store_true", help="also run orderstats on the same "
                   "orders produced without keys (every record takes the repartition path)")
    p.add_argument("--hostile", type=float, default=0.0, metavar="SHARE",
                   help="also run orderstats on the same orders with this share of hostile "
                   "events mixed in (e.g. 0.05; each must be dead-lettered)")
    p.add_argument("--baseline", default="", help="an orderstats executable of another "
                   "install (e.g. a checkout before a change): run as contender 'baseline'")
    a = p.parse_args()
    if a.quick:
        a.events, a.repeat, a.latency_rates, a.recovery_events = 50_000, 2, [], 0
    if a.baseline:
        a.contenders = [*a.contenders, BASELINE]
    if a.unkeyed:
        a.contenders = [*a.contenders, UNKEYED]
    if a.hostile:
        a.contenders = [*a.contenders, HOSTILE]
    events = 1_000_000 if a.full else a.events
    broker = bootstrap_servers(a.broker).split(",")[0]
    broker_pid = a.broker_pid or find_broker_pid(broker)
    if not broker_pid:
        print(f"no local process listens on {broker}: the broker's CPU is not measured "
              "(--broker-pid)", flush=True)
    work = Path(tempfile.mkdtemp(prefix="orderstats-bench-"))
    stamp = time.strftime("%Y%m%d-%H%M%S")

    print(f"producing {events:,} orders over {a.stores:,} stores to bench-{stamp}...",
          flush=True)
    data = produce_dataset(broker, f"bench-{stamp}", events, a.stores, a.seed)
    if a.unkeyed:
        data.unkeyed = produce_dataset(broker, f"bench-{stamp}-unkeyed", events, a.stores,
                                       a.seed, keys="none")
    if a.hostile:
        data.with_hostile = produce_dataset(broker, f"bench-{stamp}-hostile", events, a.stores,
                                            a.seed, hostile=a.hostile)
    meta = {"events": events, "stores": a.stores, "partitions": 8, "repeat": a.repeat,
            "machine": machine(), "topic": data.topic, "broker_pid": broker_pid,
            "command": " ".join(sys.argv[1:]), "code": code_version()}
    a.out.mkdir(exist_ok=True)
    runs = repetitions(a, a.contenders, data, broker, broker_pid, work, meta, stamp)
    summary = summarize(runs)
    result = {"meta": meta, "summary": summary,
              "runs": [{k: m.to_json() for k, m in r.items()} for r in runs]}
    if a.cardinality:
        extra_runs = {}
        # The unkeyed and hostile variants have datasets of their own: main run only.
        same_data = [c for c in a.contenders if c not in (UNKEYED, HOSTILE)]
        for stores in a.cardinality:
            print(f"cardinality: producing {events:,} orders over {stores:,} stores...",
                  flush=True)
            more = produce_dataset(broker, f"bench-{stamp}-{stores}", events, stores, a.seed)
            extra_runs[stores] = repetitions(a, same_data, more, broker, broker_pid, work,
                                             {**meta, "stores": stores}, stamp)
        result["cardinality"] = {
            "runs": {str(n): [{k: m.to_json() for k, m in r.items()} for r in rs]
                     for n, rs in extra_runs.items()},
            "rows": cardinality_rows(a.stores, summary,
                                     {n: summarize(rs) for n, rs in extra_runs.items()})}
    if a.latency_rates:
        result["latency"] = latency(broker, work, a.latency_rates, a.latency_seconds, a.stores,
                                    a.probe_poll_s)
    if a.recovery_events:
        result["recovery"] = recovery(broker, work, a.recovery_events, a.stores)
    if a.burst_events:
        result["burst"] = burst(broker, work, a.burst_events, a.stores)
    if a.steady_events:
        result["steady"] = steady(broker, work, a.steady_events, a.steady_stores)
    if a.full_day_stores:
        result["full_day"] = full_steady(broker, work, a.full_day_stores)

    table = markdown(summary, meta)
    if "cardinality" in result:
        table += ("\n\nCardinality (the same events over more stores, the same contenders and "
                  "repetitions):\n\n" + cardinality_markdown(result["cardinality"]["rows"]))
    if result.get("latency"):
        table += "\n\n" + latency_markdown(result["latency"])
    extra = []
    for lat in result.get("latency", []):
        extra.append(f"- end-to-end latency at {lat['offered_per_s']:,}/s offered: p50 "
                     f"{lat['p50_s'] * 1000:.0f} ms, p99 {lat['p99_s'] * 1000:.0f} ms "
                     f"({lat['probes']} probes from {lat['probes_from_s']:.0f} s into the "
                     f"load; from {lat['probes_all_from_s']:.0f} s: p99 "
                     f"{lat['p99_all_s'] * 1000:.0f} ms, max "
                     f"{lat['max_all_s'] * 1000:.0f} ms), poll every "
                     f"{lat['poll_interval_s'] * 1000:.0f} ms; cores used: " + ", ".join(
                         f"{who} {used}" for who, used in lat.get("cpu_cores_used", {}).items()))
    if "recovery" in result:
        r = result["recovery"]
        extra.append(f"- restart with {r['events']:,} events of state: "
                     f"{r['restart_with_local_state_s']:.1f} s to ready with local RocksDB, "
                     f"{r['restart_from_changelogs_s']:.1f} s rebuilt from changelogs; "
                     f"replay with state kept {r['replay_events_per_s']:,.0f} events/s")
    if "burst" in result:
        b = result["burst"]
        extra.append(f"- burst of {b['events']:,} orders into a worker slowed by "
                     f"{b['batch_delay_s']} s per batch: lag up to {b['max_lag_seen']:,}, "
                     f"drained in {b['drained_s']:.0f} s, peak RSS {b['peak_rss_mb']:.0f} MB")
    if "steady" in result:
        st = result["steady"]
        extra.append(f"- a day of 60 s windows, {st['stores']:,} stores, {st['events']:,} "
                     f"orders ({st['window_keys']:,} windows, {st['state_on_disk_mb']:.0f} MB "
                     f"on disk): RSS serving {st['rss_mb_serving']:.0f} MB, after a restart "
                     f"{st['rss_mb_serving_after_restart']:.0f} MB (peak while processing "
                     f"{st['peak_rss_mb_processing']:.0f} MB)")
    if "full_day" in result:
        f = result["full_day"]
        extra.append(f"- every minute of {f['hours']} h for {f['stores']:,} stores "
                     f"({f['windows_written']:,} windows, {f['state_on_disk_mb']:,.0f} MB on "
                     f"disk): after a restart {f['live_orders']:,} new orders counted at "
                     f"{f['live_counted_s_after_start']:.0f} s, windows scanned at "
                     f"{f['scans_done_s_after_start']:.0f} s; RSS serving "
                     f"{f['rss_mb_serving']:.0f} MB, peak {f['peak_rss_mb']:.0f} MB")
    text = table + ("\n\n" + "\n".join(extra) if extra else "")
    (a.out / f"bench-{stamp}.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    (a.out / f"bench-{stamp}.md").write_text(text + "\n")
    print("\n" + text)
    print(f"\nwritten: {a.out}/bench-{stamp}.md and .json")


if __name__ == "__main__":
    main()
