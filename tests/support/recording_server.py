"""A tiny HTTP server on 127.0.0.1 that records every request and answers with a canned
response: a webhook receiver for localstripe's signed POSTs, or a stand-in Stripe API for the
requests localstripe cannot answer (Checkout Sessions)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import attrs


@attrs.frozen
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        """The body as Stripe's form encoding: flat ``a[b][0][c]`` keys."""
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body)


@attrs.define
class Recorder:
    url: str = ""
    requests: list[RecordedRequest] = attrs.Factory(list)
    status: int = 200
    response: Callable[[RecordedRequest], Any] = lambda request: {"received": True}
    _lock: threading.Condition = attrs.Factory(threading.Condition)

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            self._lock.notify_all()

    def wait_for(
        self, predicate: Callable[[list[RecordedRequest]], bool], timeout: float = 15.0
    ) -> list[RecordedRequest]:
        """Block until the recorded requests satisfy ``predicate``; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; recorded {len(self.requests)} requests")
                self._lock.wait(left)
            return list(self.requests)


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = RecordedRequest(
                self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
            )
            recorder.record(request)
            body = json.dumps(recorder.response(request)).encode()
            self.send_response(recorder.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def recording_server() -> Iterator[Recorder]:
    recorder = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
