"""``tierkeeper configs regenerate``: writes through the real file writer, shows progress and
the written / unchanged / failed counts, and exits non-zero when any tenant failed."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from types import SimpleNamespace

import attrs
import pytest

from adapters.catalog.toml_loader import load_catalog
from adapters.openclaw.writer import CONFIG_FILE, SECRETS_FILE, FileConfigWriter
from domain.ids import TenantId, UserId
from domain.tenants import User
from domain.use_cases.configs import Configs
from entrypoints import bootstrap
from entrypoints.cli import configs_commands, main
from entrypoints.settings import Settings
from tests.fakes import FakeKeyStore, InMemoryCredentialRepository, InMemoryTenantRepository
from tests.support.openclaw_variants import all_variants, store_variants

pytestmark = pytest.mark.contract

CHOSEN = ("starter", "premium-default", "byok-openai-valid-fallback")


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings from a scratch var directory, whatever the caller's environment holds."""
    for name in ("TIERKEEPER_DATABASE_URL", "TIERKEEPER_CONFIG_ROOT", "TIERKEEPER_CATALOG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TIERKEEPER_KEY_STORE", "fernet")
    monkeypatch.setenv("TIERKEEPER_VAR_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Services over in-memory repositories and a FileConfigWriter, handed to the CLI in
    place of the composition root's ``build_services`` (no database to migrate)."""
    catalog = load_catalog()
    variants = [v for v in all_variants(catalog) if v.name in CHOSEN]
    tenants, credentials, key_store = (
        InMemoryTenantRepository(),
        InMemoryCredentialRepository(),
        FakeKeyStore(),
    )
    asyncio.run(store_variants(variants, tenants, credentials, key_store))
    writer = FileConfigWriter(tmp_path / "configs")
    closed: list[bool] = []

    async def close() -> None:
        closed.append(True)

    services = SimpleNamespace(
        ports=SimpleNamespace(tenants=tenants),
        configs=Configs(catalog, tenants, credentials, key_store, writer),
        close=close,
    )

    async def build_services(settings: Settings) -> SimpleNamespace:
        return services

    monkeypatch.setattr(bootstrap, "build_services", build_services)
    monkeypatch.setattr(configs_commands, "migrate_embedded", lambda settings: False)
    keys = [v.api_key.reveal() for v in variants if v.api_key is not None]
    return SimpleNamespace(writer=writer, closed=closed, keys=keys)


def counts(output: str) -> tuple[int, int, int]:
    match = re.search(r"│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│", output)
    assert match, output
    written, unchanged, failed = (int(g) for g in match.groups())
    return written, unchanged, failed


def test_regenerate_all_writes_every_tenant_then_finds_them_unchanged(
    world: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["configs", "regenerate", "--all"]) == 0
    first = capsys.readouterr().out
    assert counts(first) == (3, 0, 0)
    assert "regenerating configs" in first
    for tenant_id in CHOSEN:
        assert (world.writer.tenant_dir(tenant_id) / CONFIG_FILE).is_file()
    assert (world.writer.tenant_dir("byok-openai-valid-fallback") / SECRETS_FILE).is_file()
    assert world.closed == [True]

    assert main(["configs", "regenerate"]) == 0
    second = capsys.readouterr().out
    assert counts(second) == (0, 3, 0)
    for key in world.keys:
        assert key not in first + second


def test_regenerate_named_tenants_only(
    world: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["configs", "regenerate", "--tenant", "starter", "--tenant", "premium-default"]) == 0
    )
    assert counts(capsys.readouterr().out) == (2, 0, 0)
    assert not world.writer.tenant_dir("byok-openai-valid-fallback").exists()


def test_any_failure_is_counted_named_and_makes_the_exit_code_non_zero(
    world: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["configs", "regenerate", "--tenant", "starter", "--tenant", "nobody-here"])
    out = capsys.readouterr().out
    assert code == 1
    assert counts(out) == (1, 0, 1)
    assert "failed nobody-here" in out
    assert "unknown" in out


def test_tenant_and_all_are_mutually_exclusive(
    world: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["configs", "regenerate", "--all", "--tenant", "starter"])
    assert raised.value.code == 2


async def _add_tenant_to_embedded_database(tenant_id: str) -> None:
    services = await bootstrap.build_services(Settings.from_environ(), migrate=True)
    try:
        tenant = attrs.evolve(all_variants(services.catalog)[0].tenant, id=TenantId(tenant_id))
        user = User(
            id=UserId(f"user-{tenant_id}"),
            email=f"{tenant_id}@example.com",
            password_hash="not-a-real-hash",
            tenant_id=tenant.id,
            created_at=tenant.created_at,
        )
        await services.ports.tenants.add(tenant, user)
    finally:
        await services.close()


def test_the_real_composition_root_regenerates_from_the_embedded_database(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No stand-ins: SQLite under the var directory, configs under ``var/openclaw``."""
    asyncio.run(_add_tenant_to_embedded_database("e2e-starter"))
    assert main(["configs", "regenerate"]) == 0
    assert counts(capsys.readouterr().out) == (1, 0, 0)
    written = isolated_environment / "openclaw" / "e2e-starter" / CONFIG_FILE
    assert json.loads(written.read_text())["agents"]["defaults"]["model"]["primary"] == (
        "moonshot/kimi-k2.5"
    )
    assert main(["configs", "regenerate", "--tenant", "e2e-starter"]) == 0
    assert counts(capsys.readouterr().out) == (0, 1, 0)
