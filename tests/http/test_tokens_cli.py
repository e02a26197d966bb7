"""``tierkeeper tokens list|revoke`` on a fresh embedded setup: tokens are listed by id and
name (never the token), and a revoked one no longer authenticates."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from adapters.sql.urls import private_file
from domain.errors import Unauthorized
from entrypoints.bootstrap import build_services
from entrypoints.settings import Settings
from tests.http.test_cli import fresh_env, run_cli

pytestmark = pytest.mark.http

__all__ = ["fresh_env"]


def authenticate(token: str) -> str:
    async def check() -> str:
        services = await build_services(Settings.from_environ())
        try:
            return (await services.accounts.authenticate(token)).subject
        finally:
            await services.close()

    return asyncio.run(check())


def create(service: str, capsys: pytest.CaptureFixture[str]) -> str:
    return run_cli("tokens", "create", "--service", service, capsys=capsys)[1].split()[-1]


def test_tokens_are_listed_without_the_tokens_and_revoked_by_id_or_name(
    fresh_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = create("gateway", capsys)
    batch_one = create("batch", capsys)
    batch_two = create("batch", capsys)
    assert authenticate(gateway) == "gateway"
    code, out, _ = run_cli("tokens", "list", capsys=capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split() == ["ID", "NAME", "CREATED", "LAST", "USED"]
    rows = [line.split() for line in lines[1:]]
    assert sorted(r[1] for r in rows) == ["batch", "batch", "gateway"]
    assert not any(t in out for t in (gateway, batch_one, batch_two))
    gateway_id = next(r[0] for r in rows if r[1] == "gateway")
    assert next(r[3] for r in rows if r[1] == "gateway") != "never"

    code, out, _ = run_cli("tokens", "revoke", gateway_id, capsys=capsys)
    assert (code, out.strip()) == (0, "revoked 1 service token(s)")
    with pytest.raises(Unauthorized):
        authenticate(gateway)
    code, out, _ = run_cli("tokens", "revoke", "batch", capsys=capsys)
    assert (code, out.strip()) == (0, "revoked 2 service token(s)")
    for token in (batch_one, batch_two):
        with pytest.raises(Unauthorized):
            authenticate(token)
    code, out, _ = run_cli("tokens", "list", capsys=capsys)
    assert out.strip().splitlines()[1:] == []


def test_revoking_an_unknown_token_is_an_error(
    fresh_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli("tokens", "revoke", "nothing-like-this", capsys=capsys)
    assert code == 1
    assert "no live service token" in err


def test_the_embedded_database_and_secret_are_readable_by_the_owner_only(
    fresh_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    create("gateway", capsys)
    var = Path(fresh_env["TIERKEEPER_VAR_DIR"])
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    files = [p for p in var.iterdir() if p.is_file()]
    assert any(p.suffix == ".sqlite3" for p in files) and (var / "secret_key") in files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    path.write_bytes(b"")
    path.chmod(0o644)
    private_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
