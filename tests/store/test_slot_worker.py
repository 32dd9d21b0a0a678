"""``store.slot_worker``: the rollup cache's worker thread, with loads that record themselves."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError

from spendgate.store.slot_plan import SlotRange
from spendgate.store.slot_worker import SlotWorker

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def request(hours: int, *, warm: bool = False) -> SlotRange:
    return SlotRange("spend_hourly", "", T0, T0 + timedelta(hours=hours), warm=warm)


def closed_while_held(worker: SlotWorker, gate: threading.Event) -> None:
    """``worker.close()``, called while its thread is held at ``gate``, which is opened once
    close has told the thread to stop; the thread is gone when it returns (other tests' stores
    may have left theirs running: only this worker's own is checked)."""
    thread = worker._thread
    assert thread is not None
    closing = threading.Thread(target=worker.close)
    closing.start()
    for _ in range(500):
        if worker._closing:
            break
        closing.join(0.01)
    gate.set()
    closing.join(10)
    assert not closing.is_alive() and not thread.is_alive()


def test_requests_run_in_order_a_waiting_one_once_and_warm_ones_only_with_room() -> None:
    gate, loaded, calls = threading.Event(), [], []
    room = [True]

    def load(asked: SlotRange) -> None:
        gate.wait(5)
        loaded.append(asked)

    worker = SlotWorker(load, lambda: room[0])
    worker.later(request(1))  # held at the gate while the rest is queued
    worker.later(request(2))
    worker.later(request(2))  # waiting already: not queued again
    worker.put(lambda: calls.append(len(loaded)))
    worker.later(request(3, warm=True))
    gate.set()
    worker.wait()
    assert loaded == [request(1), request(2), request(3, warm=True)]
    assert calls == [2]  # between the loads, in the order asked
    room[0] = False
    worker.later(request(4, warm=True))  # no room: skipped
    worker.later(request(4))  # asked by a query: loaded
    worker.later(request(1))  # done before: asked again, loaded again
    worker.wait()
    assert loaded[3:] == [request(4), request(1)]
    worker.close()


def test_a_failed_load_or_call_is_logged_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loaded = []

    def load(asked: SlotRange) -> None:
        if asked == request(1):
            raise OperationalError("select", {}, Exception("database is away"))
        loaded.append(asked)

    def failing() -> None:
        raise RuntimeError("boom")

    worker = SlotWorker(load, lambda: True)
    with caplog.at_level(logging.WARNING):
        worker.later(request(1))
        worker.put(failing)
        worker.later(request(2))
        worker.wait()
    assert loaded == [request(2)]
    assert "could not load spend_hourly" in caplog.text
    assert "work queued for the worker failed" in caplog.text
    worker.later(request(1))  # the failed request can be asked again
    worker.wait()
    worker.close()


def test_close_stops_the_thread_and_drops_what_is_queued() -> None:
    gate, loaded = threading.Event(), []

    def load(asked: SlotRange) -> None:
        gate.wait(5)
        loaded.append(asked)

    worker = SlotWorker(load, lambda: True)
    worker.later(request(1))
    worker.later(request(2))
    closed_while_held(worker, gate)
    assert request(2) not in loaded
    worker.later(request(3))  # a new thread after close
    worker.wait()
    assert loaded[-1] == request(3)
    worker.close()


def test_work_asked_while_closing_is_dropped_and_close_returns() -> None:
    """What the thread runs may ask for more while ``close`` waits for it (the rehearsal's
    questions do): that is dropped, not given to a second thread, which would take the
    signal to stop and leave ``close`` waiting for ever."""
    started, gate, loaded = threading.Event(), threading.Event(), []
    worker = SlotWorker(loaded.append, lambda: True)

    def asking() -> None:
        started.set()
        gate.wait(5)
        worker.later(request(5))
        worker.put(lambda: loaded.append(request(6)))

    worker.put(asking)
    assert started.wait(5)  # the thread runs it
    closed_while_held(worker, gate)
    assert loaded == []
    worker.later(request(5))  # not left marked as waiting
    worker.wait()
    assert loaded == [request(5)]
    worker.close()
