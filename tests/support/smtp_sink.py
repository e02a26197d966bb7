"""A real SMTP server in the test process (aiosmtpd on 127.0.0.1, a free port) that keeps
every message it accepts, parsed, for tests to wait on and read."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

import attrs
from aiosmtpd.controller import Controller


@attrs.define
class SmtpSink:
    url: str = ""
    messages: list[EmailMessage] = attrs.Factory(list)
    envelopes: list[tuple[str, list[str]]] = attrs.Factory(list)
    _lock: threading.Condition = attrs.Factory(threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self._lock.notify_all()
        return "250 OK"

    def wait_for(
        self, predicate: Callable[[list[EmailMessage]], bool], timeout: float = 20.0
    ) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; received {len(self.messages)} mails")
                self._lock.wait(left)
            return list(self.messages)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    sink.url = f"smtp://127.0.0.1:{port}"
    try:
        yield sink
    finally:
        controller.stop()
