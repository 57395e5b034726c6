"""Reading and encoding the next batch while Qdrant applies the current one.

``ragops migrate`` waits for each upsert (``wait=true``) before it records the batch, so a
killed run resumes at the last batch Qdrant applied. That wait is idle time for the reader:
a thread reads the next batch from the source and writes its JSON body meanwhile, one batch
ahead and no more (memory stays one batch larger, whatever the store's size). Nothing is
sent before the batch ahead of it was answered, so the order of requests, and what a resumed
run replays, are the same as without it.

The thread is the only one to touch the source until it has ended: ``close`` stops it and
waits for it, and a failure in it is raised again where the batches are consumed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

Item = TypeVar("Item")
Prepared = TypeVar("Prepared")
_POLL_SECONDS = 0.1


class _End:
    pass


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetch(Generic[Item, Prepared]):
    """``(item, prepare(item))`` for each item, computed in a thread one item ahead."""

    def __init__(
        self, items: Iterable[Item], prepare: Callable[[Item], Prepared], depth: int = 1
    ) -> None:
        self._ready: queue.Queue[tuple[Item, Prepared] | _End | _Failed] = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._fill, args=(items, prepare), name="migrate-prefetch", daemon=True
        )
        self._thread.start()

    def _fill(self, items: Iterable[Item], prepare: Callable[[Item], Prepared]) -> None:
        iterator = iter(items)
        try:
            try:
                for item in iterator:
                    if self._stop.is_set() or not self._put((item, prepare(item))):
                        return
            finally:
                close = getattr(iterator, "close", None)
                if callable(close):
                    close()  # a source's generator ends in the thread that ran it
        except BaseException as exc:  # raised again in the consumer's thread
            self._put(_Failed(exc))
        else:
            self._put(_End())

    def _put(self, entry: tuple[Item, Prepared] | _End | _Failed) -> bool:
        while not self._stop.is_set():
            try:
                self._ready.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[tuple[Item, Prepared]]:
        while True:
            entry = self._ready.get()
            if isinstance(entry, _End):
                return
            if isinstance(entry, _Failed):
                raise entry.error
            yield entry

    def close(self) -> None:
        """Stop the thread and wait for it: the source is this thread's again."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Prefetch[Item, Prepared]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
