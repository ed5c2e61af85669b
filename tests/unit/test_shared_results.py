"""One computation per key for callers that ask at about the same time."""

from __future__ import annotations

import threading
import time

import pytest

from dxc.realtime.shared import SharedResults


def test_callers_at_the_same_time_share_one_computation():
    shared: SharedResults[int] = SharedResults(ttl=60)
    calls = []
    release = threading.Event()

    def compute() -> int:
        calls.append(1)
        release.wait(5)
        return 42

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(shared.get("k", compute)))
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.1)  # every caller is waiting for the first one's answer
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == [42] * 20
    assert len(calls) == 1


def test_other_keys_and_expired_results_are_computed_again(monkeypatch):
    shared: SharedResults[str] = SharedResults(ttl=1)
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    assert shared.get("a", lambda: "first") == "first"
    assert shared.get("a", lambda: "second") == "first"
    assert shared.get("b", lambda: "other") == "other"
    now[0] += 2
    assert shared.get("a", lambda: "third") == "third"


def test_a_failure_reaches_its_waiters_and_is_not_kept():
    shared: SharedResults[str] = SharedResults(ttl=60)

    def fail() -> str:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        shared.get("k", fail)
    assert shared.get("k", lambda: "back") == "back"


def test_it_holds_at_most_max_entries():
    shared: SharedResults[int] = SharedResults(ttl=60, max_entries=3)
    for n in range(10):
        shared.get(n, lambda n=n: n)
    assert len(shared._entries) <= 3
    assert shared.get(9, lambda: -1) == 9  # the newest stayed


def test_the_oldest_results_go_when_the_kept_ones_are_too_big():
    shared: SharedResults[str] = SharedResults(ttl=60, size=len, max_size=10)
    for key in "abc":
        shared.get(key, lambda key=key: key * 4)  # 4 each: "a" goes when "c" comes
    assert shared.get("c", lambda: "again") == "cccc"
    assert shared.get("b", lambda: "again") == "bbbb"
    assert shared.get("a", lambda: "again") == "again"


def test_a_result_bigger_than_the_bound_reaches_its_waiters_and_is_not_kept():
    shared: SharedResults[str] = SharedResults(ttl=60, size=len, max_size=3)
    assert shared.get("k", lambda: "long") == "long"
    assert shared.get("k", lambda: "next") == "next"
    assert shared._total == 0


def test_an_expired_result_no_longer_counts(monkeypatch):
    shared: SharedResults[str] = SharedResults(ttl=1, size=len, max_size=10)
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    for _ in range(5):
        now[0] += 2
        shared.get("k", lambda: "12345678")
    assert shared._total == 8
    assert shared.get("k", lambda: "again") == "12345678", "still kept: it fits"
