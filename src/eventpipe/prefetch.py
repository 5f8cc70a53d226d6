"""Producing items in a background thread while the caller works on the previous ones."""

import queue
import threading
from collections.abc import Iterator


class ReadAhead:
    """``items``, produced in a background thread from the moment this is made, up to
    ``depth`` ahead.

    Whatever producing them costs (reading and splitting a file; DuckDB computing
    the next batch of a result, which releases the GIL) then overlaps with what the
    caller does with the previous ones, or with anything it does before it starts
    iterating. The caller must not use the producer's resources (a DuckDB
    connection) until the iteration ends, and calls ``close`` if it stops early.
    """

    _DONE = object()

    def __init__(self, items: Iterator, depth: int = 2) -> None:
        self._handoff: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._worker = threading.Thread(
            target=self._produce, args=(items,), name="eventpipe-read", daemon=True
        )
        self._worker.start()

    def _produce(self, items: Iterator) -> None:
        try:
            for item in items:
                if self._stop.is_set():
                    return
                self._handoff.put(item)
            self._handoff.put(self._DONE)
        except BaseException as error:  # handed to the consumer, raised there
            self._handoff.put(error)

    def __iter__(self) -> Iterator:
        try:
            while (item := self._handoff.get()) is not self._DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop the producer and wait for it (it may be blocked on a full queue)."""
        self._stop.set()
        while self._worker.is_alive():
            try:
                self._handoff.get_nowait()
            except queue.Empty:
                self._worker.join(0.01)


def prefetched(items: Iterator, depth: int = 2) -> Iterator:
    """``items``, produced in a background thread (started at the first item) up to ``depth`` ahead."""
    yield from ReadAhead(items, depth)
