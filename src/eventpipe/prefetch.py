"""Producing items in a background thread while the caller works on the previous ones."""

import queue
import threading
from collections.abc import Iterator


def prefetched(items: Iterator, depth: int = 2) -> Iterator:
    """``items``, produced in a background thread up to ``depth`` ahead.

    Whatever producing them costs (reading and splitting a file; DuckDB computing
    the next batch of a result, which releases the GIL) then overlaps with what the
    caller does with the previous ones. The caller must not use the producer's
    resources (a DuckDB connection) until the iteration ends.
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                handoff.put(item)
            handoff.put(done)
        except BaseException as error:  # handed to the consumer, raised there
            handoff.put(error)

    worker = threading.Thread(target=produce, name="eventpipe-read", daemon=True)
    worker.start()
    try:
        while (item := handoff.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                handoff.get_nowait()
            except queue.Empty:
                worker.join(0.01)
