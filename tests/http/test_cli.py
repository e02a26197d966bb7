"""``tierkeeper serve``, ``tokens create`` and ``tenants set-tier`` on a fresh embedded setup."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from entrypoints.cli import main

pytestmark = pytest.mark.http


@pytest.fixture
def fresh_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Nothing but a var directory: the embedded default on a fresh machine."""
    for name in list(os.environ):
        if name.startswith("TIERKEEPER_"):
            monkeypatch.delenv(name)
    env = {"TIERKEEPER_VAR_DIR": str(tmp_path / "var")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def run_cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tokens_create_prints_the_token_alone_on_its_last_line(
    fresh_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli("tokens", "create", "--service", "gateway", capsys=capsys)
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert token.startswith("tks_") and " " not in token
    second = run_cli("tokens", "create", "--service", "gateway", capsys=capsys)[1]
    assert second.strip().splitlines()[-1] != token


def test_tokens_create_refuses_a_bad_service_name(
    fresh_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli("tokens", "create", "--service", "has space", capsys=capsys)
    assert code == 2
    assert err.startswith("error: service name must be ")
    assert err.endswith(" (service)\n")  # the field at fault, named after the detail


def test_set_tier_of_an_unknown_tenant_is_an_error(
    fresh_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli("tenants", "set-tier", "t_nobody", "premium", capsys=capsys)
    assert code == 2
    assert "unknown" in err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(url: str, process: subprocess.Popen[Any], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def test_serve_on_a_fresh_machine_migrates_and_answers_then_set_tier_and_tokens_work(
    fresh_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERKEEPER_")}
    env.update(fresh_env)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "tierkeeper"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/readyz", process)
        signup = httpx.post(
            f"{base}/api/v1/auth/signup",
            json={"email": "serve@example.com", "password": "a long password"},
            timeout=30,
        )
        assert signup.status_code == 201
        tenant_id = signup.json()["tenant"]["id"]

        code, out, _ = run_cli(
            "tenants", "set-tier", tenant_id, "plus", "--status", "active", capsys=capsys
        )
        assert code == 0
        assert "tier premium, status active" in out
        token = run_cli("tokens", "create", "--service", "gw", capsys=capsys)[1].split()[-1]
        admit = httpx.post(
            f"{base}/api/v1/gateway/admit",
            json={"tenant_id": tenant_id, "message_id": "first"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert admit.status_code == 200, admit.text
        assert admit.json()["model"]["primary"].startswith("anthropic/")
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}" in output
