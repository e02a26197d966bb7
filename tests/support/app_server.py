"""The app as it runs in production: ``uvicorn entrypoints.http.app:create_app --factory`` in
a process of its own on 127.0.0.1 (a free port), its services built from the environment
given. For tests that need the real server's event loop, connection pools and error paths,
e.g. while a dependency goes away underneath it."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs
import httpx

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
ROOT = Path(__file__).resolve().parents[2]


@attrs.define
class AppServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(server: AppServer) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the app exited:\n{server.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.base_url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"the app was not ready within {READY_TIMEOUT_S} s:\n{server.log()}")


@contextlib.contextmanager
def running_app(environ: Mapping[str, str], log_dir: Path) -> Iterator[AppServer]:
    """One uvicorn worker serving the app; terminated (then killed) on exit."""
    port = _free_port()
    log_path = log_dir / f"app-{port}.log"
    command = [
        sys.executable, "-m", "uvicorn", "entrypoints.http.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=dict(environ), cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT
        )
    server = AppServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
