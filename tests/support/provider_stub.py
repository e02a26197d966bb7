"""A local stand-in for the BYOK providers' models endpoints, on 127.0.0.1.

Each provider lives under its own prefix (``http://127.0.0.1:PORT/openai`` …) and answers at
its catalog ``test_path`` after checking the auth header its ``auth_style`` names. What it
answers depends on the key, so one server covers every case:

- a key containing ``unauthorized`` → 401, ``forbidden`` → 403, ``ratelimited`` → 429,
  ``broken`` → 500, ``slow`` → answers after ``slow_s`` seconds; anything else → 200.
- a missing or misplaced key → 401 (as the real providers do).

``refused_url()`` gives a base URL on which nothing listens (connection refused).
Point the catalog at it with ``provider_env()``: ``TIERKEEPER_PROVIDER_<ID>_BASE_URL``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs

from domain.catalog import AuthStyle, Catalog

KEY_BEHAVIOURS = (
    ("unauthorized", 401),
    ("forbidden", 403),
    ("ratelimited", 429),
    ("broken", 500),
)


@attrs.define
class ProviderStub:
    port: int
    catalog: Catalog
    slow_s: float
    requests: list[tuple[str, str]] = attrs.Factory(list)
    """(provider id, path) of every request served."""

    def base_url(self, provider_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/{provider_id}"

    def provider_env(self, refused: tuple[str, ...] = ()) -> dict[str, str]:
        """Base URL overrides for every BYOK provider; those named in ``refused`` point at a
        port where nothing listens."""
        return {
            f"TIERKEEPER_PROVIDER_{p.id.upper()}_BASE_URL": (
                refused_url() if p.id in refused else self.base_url(p.id)
            )
            for p in self.catalog.byok_providers
        }


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/nothing"


def _presented_key(headers: Mapping[str, str], style: AuthStyle) -> str | None:
    if style is AuthStyle.BEARER:
        value = headers.get("Authorization", "")
        return value[len("Bearer ") :] if value.startswith("Bearer ") else None
    if style is AuthStyle.X_API_KEY:
        return headers.get("x-api-key")
    return headers.get("x-goog-api-key")


def _handler(stub: ProviderStub) -> type[BaseHTTPRequestHandler]:
    providers = {p.id: p for p in stub.catalog.byok_providers}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keys stay out of logs
            return

        def _answer(self, status: int, body: object) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            provider_id, _, rest = self.path.lstrip("/").partition("/")
            provider = providers.get(provider_id)
            if provider is None or "/" + rest != "/" + provider.test_path.lstrip("/"):
                self._answer(404, {"error": "not found"})
                return
            stub.requests.append((provider_id, "/" + rest))
            for name, value in provider.extra_headers:
                if self.headers.get(name) != value:
                    self._answer(400, {"error": f"missing header {name}"})
                    return
            key = _presented_key(self.headers, provider.auth_style)
            if not key:
                self._answer(401, {"error": "no key"})
                return
            if "slow" in key:
                time.sleep(stub.slow_s)
            for marker, status in KEY_BEHAVIOURS:
                if marker in key:
                    self._answer(status, {"error": marker})
                    return
            self._answer(200, {"data": [{"id": m.id} for m in provider.models]})

    return Handler


@contextmanager
def running_provider_stub(catalog: Catalog, slow_s: float = 2.0) -> Iterator[ProviderStub]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    stub = ProviderStub(port=server.server_address[1], catalog=catalog, slow_s=slow_s)
    server.RequestHandlerClass = _handler(stub)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
