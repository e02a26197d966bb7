"""``tierkeeper keys migrate|rotate|verify`` from the command line, over stored keys, the
real Fernet store and a real OpenBao; settings come from the environment as in production."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace

import attrs
import pytest

from adapters.keystores.fernet import FernetKeyStore
from domain.audit import AuditAction, AuditSource
from domain.errors import ValidationError
from domain.secrets import Secret
from entrypoints import bootstrap
from entrypoints.cli import keys_commands, main
from entrypoints.settings import Settings
from tests.fakes import FixedClock, InMemoryAuditLog, InMemoryCredentialRepository
from tests.support.credentials import (
    add_tenants,
    api_key_for,
    store_credentials,
    tenant_id_for,
)
from tests.support.openbao import OpenBaoServer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("keys_never_logged")]

KEYS = 30


@attrs.define
class Cli:
    repository: InMemoryCredentialRepository
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch
    audit: InMemoryAuditLog = attrs.Factory(InMemoryAuditLog)

    def run(self, *argv: str) -> tuple[int, str]:
        code = main(list(argv))
        captured = self.capsys.readouterr()
        return code, captured.out + captured.err

    def use_store(self, name: str) -> None:
        self.monkeypatch.setenv("TIERKEEPER_KEY_STORE", name)

    def stores(self) -> set[str]:
        return {row.ciphertext.store for row in self.repository.rows.values()}


def services_over(
    repository: InMemoryCredentialRepository, audit: InMemoryAuditLog
) -> Callable[[Settings], Awaitable[SimpleNamespace]]:
    """What the CLI needs from the composition root: the credential repository, the audit
    log and a clock, and close."""

    async def build_services(settings: Settings) -> SimpleNamespace:
        async def close() -> None:
            return None

        ports = SimpleNamespace(credentials=repository, audit=audit, clock=FixedClock())
        return SimpleNamespace(ports=ports, close=close)

    return build_services


@pytest.fixture
def cli(
    openbao: OpenBaoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    secret = secrets.token_urlsafe(32)
    env = {
        "TIERKEEPER_VAR_DIR": str(tmp_path),
        "TIERKEEPER_KEY_STORE": "fernet",
        "TIERKEEPER_SECRET_KEY": secret,
        "TIERKEEPER_VAULT_ADDR": openbao.addr,
        "TIERKEEPER_VAULT_TOKEN": openbao.root_token,
        "TIERKEEPER_VAULT_TRANSIT_KEY": f"cli-{secrets.token_hex(4)}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("TIERKEEPER_VAULT_ROLE_ID", "TIERKEEPER_VAULT_SECRET_ID"):
        monkeypatch.delenv(name, raising=False)
    repository = InMemoryCredentialRepository()
    asyncio.run(store_credentials(repository, FernetKeyStore([Secret(secret)]), range(KEYS)))
    audit = InMemoryAuditLog()
    monkeypatch.setattr(bootstrap, "build_services", services_over(repository, audit))
    monkeypatch.setattr(keys_commands, "migrate_embedded", lambda settings: False)
    return Cli(repository, capsys, monkeypatch, audit)


def test_keys_migrate_moves_every_key_and_prints_the_counts(cli: Cli):
    code, output = cli.run("keys", "migrate", "--to", "vault")

    assert code == 0
    assert "keys migrate --to vault" in output
    assert f"│        {KEYS} │      {KEYS} │       0 │      0 │" in output
    assert cli.stores() == {"vault"}
    assert api_key_for(1).reveal() not in output
    moved = [entry for entry in cli.audit.recorded if entry.action is AuditAction.KEY_MOVED]
    assert len(moved) == KEYS
    assert {entry.actor.source for entry in moved} == {AuditSource.CLI}


def test_keys_verify_reports_stale_keys_until_the_store_is_switched(cli: Cli):
    cli.run("keys", "migrate", "--to", "vault")

    code_before, before = cli.run("keys", "verify")
    cli.use_store("vault")
    code_after, after = cli.run("keys", "verify")

    assert (code_before, code_after) == (0, 0)
    assert f"│        {KEYS} │       {KEYS} │    {KEYS} │      0 │" in before
    assert f"│        {KEYS} │       {KEYS} │     0 │      0 │" in after


def test_keys_rotate_rewraps_after_the_vault_key_was_rotated(
    cli: Cli, openbao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch
):
    cli.use_store("vault")
    cli.run("keys", "migrate", "--to", "vault")
    transit_key = Settings.from_environ().vault_transit_key
    openbao.client().secrets.transit.rotate_key(transit_key)

    code, output = cli.run("keys", "rotate")

    assert code == 0
    assert f"│        {KEYS} │      {KEYS} │       0 │      0 │" in output
    assert {row.ciphertext.key_version for row in cli.repository.rows.values()} == {2}


def test_keys_verify_exits_1_and_names_the_tenant_whose_key_is_unreadable(cli: Cli):
    row = cli.repository.rows[tenant_id_for(3)]
    broken = attrs.evolve(row.ciphertext, token=row.ciphertext.token[:-10] + "A" * 10)
    cli.repository.rows[row.tenant_id] = attrs.evolve(row, ciphertext=broken)

    code, output = cli.run("keys", "verify")

    assert code == 1
    assert "failed t-000003: the Fernet token" in output
    assert api_key_for(3).reveal() not in output


def test_keys_migrate_to_an_unconfigured_vault_is_an_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("TIERKEEPER_VAULT_ADDR")

    code, output = cli.run("keys", "migrate", "--to", "vault")

    assert code == 2
    assert "TIERKEEPER_VAULT_ADDR is required" in output
    assert cli.stores() == {"fernet"}


def settings_for(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_environ({"TIERKEEPER_VAR_DIR": str(tmp_path), **env})


def test_the_configured_store_is_active_and_every_other_configured_store_still_decrypts(
    tmp_path: Path,
):
    settings = settings_for(
        tmp_path,
        TIERKEEPER_SECRET_KEY="s1",
        TIERKEEPER_VAULT_ADDR="http://127.0.0.1:1",
        TIERKEEPER_VAULT_TOKEN="t",
    )

    stores = bootstrap.build_key_stores(settings)

    assert [store.name for store in stores.stores()] == ["fernet", "vault"]


def test_a_vault_only_setup_generates_no_fernet_secret_unless_a_move_needs_one(tmp_path: Path):
    settings = settings_for(
        tmp_path,
        TIERKEEPER_KEY_STORE="vault",
        TIERKEEPER_VAULT_ADDR="http://127.0.0.1:1",
        TIERKEEPER_VAULT_ROLE_ID="role",
        TIERKEEPER_VAULT_SECRET_ID="secret-id",
    )

    alone = bootstrap.build_key_stores(settings)
    assert [store.name for store in alone.stores()] == ["vault"]
    assert not (tmp_path / "secret_key").exists()

    with_fernet = bootstrap.build_key_stores(settings, also=("fernet",))
    assert [store.name for store in with_fernet.stores()] == ["vault", "fernet"]
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_the_vault_store_needs_its_address(tmp_path: Path):
    settings = settings_for(tmp_path, TIERKEEPER_KEY_STORE="vault", TIERKEEPER_VAULT_TOKEN="t")

    with pytest.raises(ValidationError) as caught:
        bootstrap.build_key_store(settings, "vault")

    assert caught.value.field == "TIERKEEPER_VAULT_ADDR"


def test_keys_commands_run_end_to_end_on_the_embedded_database(
    openbao: OpenBaoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    """Through the real composition root: SQLite migrated on first use, keys put with the
    Fernet store, moved into Vault, verified with Vault active."""
    env = {
        "TIERKEEPER_VAR_DIR": str(tmp_path),
        "TIERKEEPER_SECRET_KEY": secrets.token_urlsafe(32),
        "TIERKEEPER_VAULT_ADDR": openbao.addr,
        "TIERKEEPER_VAULT_TOKEN": openbao.root_token,
        "TIERKEEPER_VAULT_TRANSIT_KEY": f"cli-e2e-{secrets.token_hex(4)}",
    }
    for name in [n for n in os.environ if n.startswith("TIERKEEPER_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["keys", "verify"]) == 0
    assert "│         0 │" in capsys.readouterr().out

    async def put_keys() -> None:
        services = await bootstrap.build_services(Settings.from_environ())
        try:
            await add_tenants(services.ports.tenants, range(12))
            await store_credentials(services.ports.credentials, services.ports.key_store, range(12))
        finally:
            await services.close()

    asyncio.run(put_keys())

    assert main(["keys", "migrate", "--to", "vault"]) == 0
    assert "│        12 │      12 │       0 │      0 │" in capsys.readouterr().out
    monkeypatch.setenv("TIERKEEPER_KEY_STORE", "vault")
    assert main(["keys", "verify"]) == 0
    assert "│        12 │       12 │     0 │      0 │" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("database_url", "argv", "expected"),
    [
        ("sqlite:///{tmp}/t.sqlite3", (), keys_commands.SQLITE_CONCURRENCY),
        ("postgresql://u@localhost/db", (), keys_commands.DEFAULT_CONCURRENCY),
        ("sqlite:///{tmp}/t.sqlite3", ("--concurrency", "5"), 5),
    ],
)
def test_the_jobs_concurrency_defaults_by_database_and_yields_to_the_option(
    cli: Cli, tmp_path: Path, database_url: str, argv: tuple[str, ...], expected: int
) -> None:
    """SQLite's single write lock makes more than two writers slower, not faster."""
    cli.monkeypatch.setenv("TIERKEEPER_DATABASE_URL", database_url.format(tmp=tmp_path))
    used: list[int] = []

    async def run(*args: object) -> int:
        used.append(int(str(args[-1])))
        return keys_commands.EXIT_OK

    cli.monkeypatch.setattr(keys_commands, "_run", run)
    code, _ = cli.run("keys", "rotate", *argv)
    assert (code, used) == (0, [expected])
