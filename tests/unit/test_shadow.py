"""Rebuild while serving, the pure parts: the control topic's fold, "caught up", which
requests a retiring worker forwards, and answers that name their epoch."""

from __future__ import annotations

import pytest

from app.kafka.catchup import Lag
from app.kafka.control import ControlState, epoch_record, shadow_record, worker_record
from app.kafka.epoch import epoch_topics, group_id
from app.settings import Settings, SettingsError
from app.web.forward import forwarded
from app.web.merge import as_of, merge_parts


def fold(*records: tuple[bytes, bytes | None]) -> ControlState:
    state = ControlState()
    for key, value in records:
        state = state.apply(key, value)
    return state


def test_a_fresh_control_topic_means_epoch_1_and_nothing_pending():
    state = fold()
    assert (state.epoch, state.pending, state.next_epoch, state.workers) == (1, None, 2, {})


def test_the_switch_is_one_record_that_makes_the_shadow_current_and_ends_it():
    state = fold(epoch_record(3), shadow_record(4, "pending", previous=3))
    assert (state.epoch, state.pending) == (3, 4)
    state = state.apply(*epoch_record(4))
    assert (state.epoch, state.pending, state.next_epoch) == (4, None, 5)
    assert state.shadow_info["previous"] == 3


def test_a_cancelled_shadow_is_not_pending_and_its_number_is_never_reused():
    state = fold(shadow_record(2, "pending"), shadow_record(2, "cancelled"))
    assert (state.epoch, state.pending, state.next_epoch) == (1, None, 3)


def test_old_records_and_unknown_keys_do_not_confuse_the_fold():
    # a shadow record at or below the current epoch (e.g. read after the switch) is history
    state = fold(shadow_record(2, "pending"), epoch_record(2), (b"something-else", b"x"))
    assert (state.epoch, state.pending) == (2, None)


def test_workers_register_per_url_and_a_tombstone_removes_them():
    state = fold(worker_record("http://a:1", 1), worker_record("http://b:2", 2),
                 worker_record("http://c:3", 2), worker_record("http://a:1", 2),
                 worker_record("http://c:3", None))
    assert state.workers == {"http://a:1": 2, "http://b:2": 2}
    assert state.workers_of(2) == ["http://a:1", "http://b:2"]
    assert state.workers_of(1) == []


def test_epoch_topics_are_the_epoch_groups_own():
    assert group_id("os", 1) == "os" and group_id("os", 2) == "os-v2"
    topics = epoch_topics("os", 2)
    assert "os-v2-totals-changelog" in topics and "os-v2-orders-by-store" in topics
    assert "os-v2-__assignor-__leader" in topics
    assert all(t.startswith("os-v2-") for t in topics)


def lag(committed: dict, ends: dict, missing: tuple = ()) -> Lag:
    return Lag("g", {("o", p): c for p, c in committed.items()},
               {("o", p): e for p, e in ends.items()}, missing)


def test_caught_up_means_past_the_log_end_of_the_previous_look():
    first = lag({0: 50, 1: 10}, {0: 100, 1: 100})
    assert not first.passed(None)  # one look says nothing about keeping up
    second = lag({0: 100, 1: 99}, {0: 130, 1: 130})
    assert not second.passed(first)  # partition 1 still behind the first look's end
    third = lag({0: 131, 1: 130}, {0: 160, 1: 161})
    assert third.passed(second) and third.total == 29 + 31
    assert third.as_json(second)["caught_up"] and third.as_json(second)["lag"] == \
        {"o": {"0": 29, "1": 31}}
    # a topic not created yet (no shadow worker ran): never caught up
    assert not lag({0: 200}, {0: 200}, ("o-v2-orders-by-store",)).passed(third)


def test_a_retiring_worker_forwards_the_stats_questions_only():
    for path in ("/api/stores", "/api/stores/s-1", "/api/stores/s-1/windows", "/api/live"):
        assert forwarded(path), path
    for path in ("/api/_local/stores", "/api/_local/status", "/api/cluster", "/", "/ready",
                 "/health", "/metrics", "/api/storesX", "/api/openapi.json"):
        assert not forwarded(path), path


def test_every_answer_names_its_epoch_and_a_merge_never_mixes_two():
    assert as_of({0: [5, 1000]}, 3)["epoch"] == 3
    part = {"partitions": [0], "stores": [{"store_id": "a", "totals": {"orders": 1}}],
            "progress": {"0": [5, 1000]}, "epoch": 2}
    other = {"partitions": [1], "stores": [{"store_id": "b", "totals": {"orders": 9}}],
             "progress": {"1": [7, 2000]}, "epoch": 1}
    merged = merge_parts({"http://a": part, "http://b": other}, Settings(partitions=2),
                         "orders", 10, epoch=2)
    assert [s["store_id"] for s in merged["stores"]] == ["a"]
    assert merged["as_of"]["epoch"] == 2 and merged["unreachable_workers"] == ["http://b"]
    assert merged["missing_partitions"] == [1] and not merged["complete"]


def test_retire_after_is_a_setting():
    assert Settings().retire_after_s == 30
    assert Settings.from_env({"ORDERSTATS_RETIRE_AFTER_S": "5"}).retire_after_s == 5
    with pytest.raises(SettingsError, match="ORDERSTATS_RETIRE_AFTER_S"):
        Settings.from_env({"ORDERSTATS_RETIRE_AFTER_S": "-1"})
