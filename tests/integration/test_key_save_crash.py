"""Saving a key is all or nothing, even when the server dies mid-save (spec §3): ``kill -9``
of ``tierkeeper serve`` during a loop of ``PUT llm-config``, then a restart. After start-up
the database and the tenant's ``.env`` agree, no temporary file is left, and the stored key
is the last one acknowledged (or the one request in flight when the process died)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from domain.ids import TenantId
from domain.tenants import SubscriptionStatus
from entrypoints.bootstrap import build_services
from entrypoints.settings import Settings
from tests.support.app_server import ROOT, _free_port

pytestmark = pytest.mark.integration

ROUNDS = 3
READY_TIMEOUT_S = 60.0
PASSWORD = "crash test password"


@contextlib.contextmanager
def serving(environ: Mapping[str, str], log: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``tierkeeper serve`` (start-up reconciliation included) until killed or the end."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from entrypoints.cli import main; raise SystemExit(main())",
             "serve", "--port", str(port)],
            env=dict(environ), cwd=str(ROOT), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert process.poll() is None, log.read_text(errors="replace")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def stored_key(settings: Settings, tenant_id: TenantId) -> str:
    async def read() -> str:
        services = await build_services(settings)
        try:
            credential = await services.ports.credentials.get(tenant_id)
            assert credential is not None
            return (await services.ports.key_store.decrypt(credential.ciphertext)).reveal()
        finally:
            await services.close()

    return asyncio.run(read())


def make_byok(settings: Settings, tenant_id: TenantId) -> None:
    async def change() -> None:
        services = await build_services(settings)
        try:
            await services.tenants.change_tier(tenant_id, "byok", SubscriptionStatus.ACTIVE)
        finally:
            await services.close()

    asyncio.run(change())


def env_key(env_file: Path) -> str:
    (line,) = env_file.read_text().splitlines()
    value = line.split("=", 1)[1]
    return value[1:-1] if value.startswith("'") else value


def put_loop(
    base: str,
    headers: dict[str, str],
    round_: int,
    sent: list[str],
    acknowledged: list[str],
    failures: list[str],
    stop: threading.Event,
) -> None:
    """PUT one new key after another (each with a ``#``) until the server dies."""
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            key = f"sk-crash-{round_}-{n:05d}#{'x' * (n % 7)}"
            sent.append(key)
            try:
                response = client.put(
                    "/api/v1/settings/llm-config/",
                    json={"provider": "openai", "api_key": key, "model_preference": "gpt-4.1"},
                )
            except httpx.HTTPError:
                return  # the server died under this request
            if response.status_code != 200:
                failures.append(response.text)
                return
            acknowledged.append(key)


def test_killing_the_server_during_key_saves_leaves_database_and_env_in_line(
    tmp_path: Path,
) -> None:
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TIERKEEPER_")},
        "TIERKEEPER_VAR_DIR": str(tmp_path / "var"),
        "TIERKEEPER_DATABASE_URL": f"sqlite:///{tmp_path / 'tierkeeper.sqlite3'}",
        "TIERKEEPER_CONFIG_ROOT": str(tmp_path / "openclaw"),
        "TIERKEEPER_SECRET_KEY": "crash-test-platform-secret-0123456789",
    }
    settings = Settings.from_environ(environ)
    log = tmp_path / "serve.log"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(20261202)
    with serving(environ, log, port):
        signed = httpx.post(
            f"{base}/api/v1/auth/signup", json={"email": "crash@example.com", "password": PASSWORD}
        )
        assert signed.status_code == 201, signed.text
    token, tenant_id = signed.json()["token"], TenantId(signed.json()["tenant"]["id"])
    make_byok(settings, tenant_id)
    headers = {"Authorization": f"Bearer {token}"}
    env_file = tmp_path / "openclaw" / tenant_id / ".env"
    for round_ in range(ROUNDS):
        acknowledged: list[str] = []
        sent: list[str] = []
        failures: list[str] = []
        stop = threading.Event()

        with serving(environ, log, port) as process:
            loop = threading.Thread(
                target=put_loop, args=(base, headers, round_, sent, acknowledged, failures, stop)
            )
            loop.start()
            time.sleep(rng.uniform(0.5, 2.0))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            stop.set()
            loop.join(timeout=30)
        assert failures == []
        assert acknowledged, f"no PUT was acknowledged before the kill:\n{log.read_text()}"
        time.sleep(2.5)  # older than a write in progress could be: a crash's leftover
        with serving(environ, log, port):
            stored = stored_key(settings, tenant_id)
            in_flight = sent[len(acknowledged) : len(acknowledged) + 1]
            assert stored in [acknowledged[-1], *in_flight]
            assert env_key(env_file) == stored
            leftovers = [p.name for p in env_file.parent.iterdir() if p.name.endswith(".tmp")]
            assert leftovers == []
            assert (env_file.stat().st_mode & 0o777) == 0o600
