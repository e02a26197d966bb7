"""localstripe (PyPI, GPL-3.0, a test-only tool run as a separate process, never copied) on
127.0.0.1, as pytest fixtures.

Started as ``localstripe`` itself, it listens on every interface and pickles its state to
``/tmp/localstripe.pickle``, shared by every run on the machine. So it is started through
the small wrapper below instead: loopback only, a free port, state in memory only. Each test
gets an empty store (``DELETE /_config/data``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import attrs
import httpx
import pytest
import stripe

from adapters.billing.stripe_gateway import build_stripe_client
from domain.secrets import Secret

API_KEY = Secret("sk_test_tierkeeper_localstripe")
WEBHOOK_ID = "tierkeeper"

WRAPPER = """
import sys
from aiohttp import web
from localstripe import resources, server

resources.Store.dump_to_disk = lambda self: None  # state in this process only
web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


@attrs.frozen
class LocalStripe:
    url: str

    def client(self) -> stripe.StripeClient:
        return build_stripe_client(API_KEY, self.url, max_network_retries=0)

    def reset(self) -> None:
        httpx.delete(f"{self.url}/_config/data", timeout=5).raise_for_status()

    def send_webhooks_to(self, url: str, secret: str) -> None:
        """localstripe signs every event it emits with ``secret`` and POSTs it to ``url``."""
        response = httpx.post(
            f"{self.url}/_config/webhooks/{WEBHOOK_ID}",
            data={"url": url, "secret": secret},
            timeout=5,
        )
        response.raise_for_status()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_listening(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"localstripe exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"localstripe did not listen on 127.0.0.1:{port} within {timeout}s")


@contextmanager
def running_localstripe(timeout: float = 20.0) -> Iterator[LocalStripe]:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        _wait_until_listening(port, process, timeout)
        yield LocalStripe(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="session")
def localstripe_server() -> Iterator[LocalStripe]:
    with running_localstripe() as server:
        yield server


@pytest.fixture
def localstripe(localstripe_server: LocalStripe) -> LocalStripe:
    """A running localstripe with an empty store."""
    localstripe_server.reset()
    return localstripe_server
