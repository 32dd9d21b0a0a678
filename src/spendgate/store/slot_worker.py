"""The rollup cache's worker (``store.rollup_cache``): one thread that loads slots, and runs
what it is asked to run, in the order asked, so a query never waits for a long load.

A request for slots (a ``slot_plan.SlotRange``), or a ``Work`` of the same key, already waiting
is not queued again (``later``). A ``warm`` request is loaded only while there is ``room`` for
it. A load that fails is logged: the next query that needs those slots asks again. ``close``
stops the thread after what it is doing; what is still queued, or asked meanwhile (by what
the thread is running, say), is dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from spendgate.store.slot_plan import SlotRange

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Work:
    """Something for the worker to run, known by ``key``: ``later`` queues one per key."""

    key: Hashable
    run: Callable[[], object] = field(compare=False)

    def __call__(self) -> object:
        return self.run()


class SlotWorker:
    """Loads ``SlotRange`` requests with ``load`` in a thread started at the first request
    (``warm`` ones only while ``room()``), and runs between them the callables ``put``
    queues and the ``Work`` ``later`` queues."""

    def __init__(self, load: Callable[[SlotRange], object], room: Callable[[], bool]) -> None:
        self._load = load
        self._room = room
        self._queue: queue.Queue[SlotRange | Callable[[], object] | None] = queue.Queue()
        self._waiting: set[SlotRange | Work] = set()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._lock = threading.Lock()

    def later(self, request: SlotRange | Work) -> None:
        """Load the slots ``request`` names, or run it (unless the same request is waiting)."""
        with self._lock:
            if request not in self._waiting and self._queued(request):
                self._waiting.add(request)

    def put(self, work: SlotRange | Callable[[], object]) -> None:
        """Queue ``work``; the thread is started if it is not running."""
        with self._lock:
            self._queued(work)

    def _queued(self, work: SlotRange | Callable[[], object]) -> bool:
        """Queue ``work`` (the caller holds the lock), unless closing: a second thread would
        take the first one's signal to stop."""
        if self._closing:
            return False
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._work, name="spendgate-rollup-cache", daemon=True
            )
            self._thread.start()
        self._queue.put(work)
        return True

    def wait(self) -> None:
        """Until everything asked so far is done."""
        self._queue.join()

    def close(self) -> None:
        """Stop the thread after the work it is doing; what is still queued is dropped."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._closing = True
            self._queue.put(None)
        thread.join()
        with self._lock:
            self._closing = False

    def _work(self) -> None:
        while (request := self._queue.get()) is not None:
            try:
                if isinstance(request, SlotRange):
                    self._load_range(request)
                else:
                    self._call(request)
            finally:
                if isinstance(request, SlotRange | Work):  # what ``later`` may have queued
                    with self._lock:
                        self._waiting.discard(request)
                self._queue.task_done()
        self._queue.task_done()

    def _load_range(self, request: SlotRange) -> None:
        try:
            if not self._closing and (not request.warm or self._room()):
                self._load(request)
        except SQLAlchemyError as exc:  # the next query that needs them asks again
            log.warning("rollup cache: could not load %s: %s", request.table, exc)

    def _call(self, then: Callable[[], object]) -> None:
        """Run ``then`` (not while closing): a failure is logged, and the worker goes on."""
        try:
            if not self._closing:
                then()
        except Exception:  # best effort: nothing waits for its result
            log.warning("rollup cache: work queued for the worker failed", exc_info=True)
