"""A provider that never answers: a socket on 127.0.0.1 that takes connections into its
backlog and never reads or writes, so a client's connect succeeds and its read hangs until
its own timeout fires."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def hanging_server() -> Iterator[str]:
    """Yields a base URL whose requests are accepted by the kernel and never answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hanging"
