"""Prefetch: the next item prepared in a thread, one ahead, failures raised where consumed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from agent.migrate.prefetch import Prefetch


def test_items_arrive_in_order_each_with_what_prepare_made_of_it() -> None:
    with Prefetch(range(100), lambda n: n * n) as ahead:
        got = list(ahead)

    assert got == [(n, n * n) for n in range(100)]


def test_the_thread_reads_at_most_one_item_ahead_of_the_consumer() -> None:
    taken: list[int] = []

    def source() -> Iterator[int]:
        for n in range(10):
            taken.append(n)
            yield n

    with Prefetch(source(), lambda n: n) as ahead:
        items = iter(ahead)
        first = next(items)
        time.sleep(0.3)  # time enough for a thread that ran ahead freely to take them all
        # one handed over, one waiting in the queue, one prepared and waiting to be queued
        assert first == (0, 0)
        assert taken == [0, 1, 2]


def test_work_is_done_off_the_consumer_thread_and_the_source_is_closed_there() -> None:
    threads: list[str] = []

    def source() -> Iterator[int]:
        try:
            threads.append(threading.current_thread().name)
            yield 1
            yield 2
        finally:
            threads.append("closed in " + threading.current_thread().name)

    with Prefetch(source(), lambda n: threading.current_thread().name) as ahead:
        got = list(ahead)

    assert [name for _, name in got] == ["migrate-prefetch", "migrate-prefetch"]
    assert threads == ["migrate-prefetch", "closed in migrate-prefetch"]


def test_a_failure_in_the_source_is_raised_to_the_consumer_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        raise ValueError("source broke at item 2")

    got = []
    with Prefetch(source(), lambda n: n) as ahead, pytest.raises(ValueError, match="item 2"):
        for item in ahead:
            got.append(item)

    assert got == [(1, 1)]


def test_a_failure_in_prepare_is_raised_to_the_consumer() -> None:
    def prepare(n: int) -> int:
        if n == 3:
            raise RuntimeError("cannot encode 3")
        return n

    with Prefetch(range(10), prepare) as ahead, pytest.raises(RuntimeError, match="encode 3"):
        list(ahead)


def test_closing_early_stops_the_thread_and_closes_the_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        n = 0
        try:
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    ahead = Prefetch(endless(), lambda n: n)
    items = iter(ahead)
    assert next(items) == (0, 0)
    ahead.close()  # the consumer stops (an upsert failed): the thread must not hang

    assert closed.is_set()
    assert not ahead._thread.is_alive()
