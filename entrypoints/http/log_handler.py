"""A stream handler that writes the records of one event-loop turn in one write.

Every request logs one line; written one by one, those writes were a large share of a
catalog request under load (docs/benchmarks.md). Records made on a thread running an event
loop are formatted at once and kept until the end of the loop's current turn, then written
and flushed together; records made anywhere else are written at once, after whatever is
pending, so the order of lines never changes. A line waits at most one loop turn, and
``flush``/``close`` (and so ``logging.shutdown`` at exit) write whatever is pending.
"""

from __future__ import annotations

import asyncio
import logging


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class LoopTurnStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """``logging.StreamHandler`` whose writes are batched per event-loop turn."""

    def __init__(self, stream: object = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._last: logging.LogRecord | None = None
        self._flush_on: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._pending.append(line)
        self._last = record
        loop = _running_loop()
        if loop is None or (self._flush_on is not None and loop is not self._flush_on):
            self.flush()
        elif self._flush_on is None:
            self._flush_on = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._flush_on = None
            if not self._pending:
                return
            text = "".join(self._pending)
            self._pending.clear()
            try:
                self.stream.write(text)
                self.stream.flush()
            except Exception:
                if self._last is not None:
                    self.handleError(self._last)

    def close(self) -> None:
        self.flush()
        super().close()
