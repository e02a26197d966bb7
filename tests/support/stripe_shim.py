"""localstripe behind a thin recording front, so tierkeeper's real Stripe adapter can run the
whole subscription life cycle against it.

localstripe implements customers, subscriptions, plan changes and cancellation, but not
Checkout Sessions, Billing Portal sessions or the ``proration_behavior`` flag (it answers 500).
The front records every request exactly as the adapter sent it (the flags are asserted on
those records), answers the two session endpoints itself like Stripe does, drops
``proration_behavior`` from what it forwards, and passes everything else to localstripe
unchanged.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from tests.support.recording_server import RecordedRequest, Recorder

UNSUPPORTED_FLAGS = ("proration_behavior",)
LOCAL_ANSWERS = {
    "/v1/checkout/sessions": lambda n: {
        "id": f"cs_test_shim_{n}", "object": "checkout.session", "mode": "subscription",
        "url": f"https://checkout.stripe.com/c/pay/cs_test_shim_{n}",
    },
    "/v1/billing_portal/sessions": lambda n: {
        "id": f"bps_shim_{n}", "object": "billing_portal.session",
        "url": f"https://billing.stripe.com/p/session/bps_shim_{n}",
    },
}  # fmt: skip


def _forwarded_body(body: bytes) -> bytes:
    pairs = parse_qsl(body.decode(), keep_blank_values=True)
    return urlencode([(k, v) for k, v in pairs if k not in UNSUPPORTED_FLAGS]).encode()


def _handler(recorder: Recorder, upstream: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = RecordedRequest(
                self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
            )
            recorder.record(request)
            path = self.path.split("?", 1)[0]
            if self.command == "POST" and path in LOCAL_ANSWERS:
                status, body = 200, json.dumps(LOCAL_ANSWERS[path](len(recorder.requests)))
            else:
                status, body = self._forward(request)
            encoded = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

        def _forward(self, request: RecordedRequest) -> tuple[int, str]:
            headers = {k: v for k, v in request.headers.items()
                       if k.lower() in ("authorization", "content-type")}  # fmt: skip
            response = httpx.request(
                request.method, upstream + request.path, headers=headers,
                content=_forwarded_body(request.body) if request.body else None, timeout=10,
            )  # fmt: skip
            return response.status_code, response.text

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def stripe_shim(upstream: str) -> Iterator[Recorder]:
    """A front on 127.0.0.1 for the localstripe at ``upstream``; yields its recorder."""
    recorder = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder, upstream))
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
