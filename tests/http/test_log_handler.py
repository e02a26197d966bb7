"""The app's log handler: one write per event-loop turn, order kept, nothing left behind."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from entrypoints.http.log_handler import LoopTurnStreamHandler

pytestmark = pytest.mark.http


class Recorder:
    """A stream that keeps each write separately."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.flushes = 0

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        self.flushes += 1


class Broken(Recorder):
    def write(self, text: str) -> None:
        raise OSError("disk full")


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, message, args, None)


def handler(stream: Recorder) -> LoopTurnStreamHandler:
    made = LoopTurnStreamHandler(stream)
    made.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return made


async def test_the_records_of_one_loop_turn_are_written_together_after_it() -> None:
    stream = Recorder()
    h = handler(stream)
    for i in range(3):
        h.handle(record("line %d", i))
    assert stream.writes == []
    await asyncio.sleep(0)
    assert stream.writes == ["INFO line 0\nINFO line 1\nINFO line 2\n"]
    assert stream.flushes == 1
    h.handle(record("next turn"))
    await asyncio.sleep(0)
    assert stream.writes[1:] == ["INFO next turn\n"]


def test_a_record_made_without_a_running_loop_is_written_at_once() -> None:
    stream = Recorder()
    h = handler(stream)
    h.handle(record("cli"))
    assert stream.writes == ["INFO cli\n"]
    assert stream.flushes == 1


async def test_a_record_from_another_thread_follows_the_lines_already_pending() -> None:
    stream = Recorder()
    h = handler(stream)
    h.handle(record("on the loop"))
    worker = threading.Thread(target=lambda: h.handle(record("from a thread")))
    worker.start()
    worker.join()
    assert stream.writes == ["INFO on the loop\nINFO from a thread\n"]
    await asyncio.sleep(0)
    assert stream.writes == ["INFO on the loop\nINFO from a thread\n"]


async def test_closing_writes_what_is_pending() -> None:
    stream = Recorder()
    h = handler(stream)
    h.handle(record("last words"))
    h.close()
    assert stream.writes == ["INFO last words\n"]


async def test_a_failing_stream_is_reported_once_and_never_raises_into_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reported: list[str] = []
    h = handler(Broken())
    monkeypatch.setattr(h, "handleError", lambda r: reported.append(r.getMessage()))
    h.handle(record("a"))
    h.handle(record("b"))
    await asyncio.sleep(0)
    assert reported == ["b"]
    h.stream = stream = Recorder()
    h.handle(record("c"))
    await asyncio.sleep(0)
    assert stream.writes == ["INFO c\n"]


def test_a_record_that_cannot_be_formatted_is_reported_and_not_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reported: list[logging.LogRecord] = []
    stream = Recorder()
    h = handler(stream)
    monkeypatch.setattr(h, "handleError", reported.append)
    bad = record("%d apples", "three")
    h.handle(bad)
    assert reported == [bad]
    assert stream.writes == []
