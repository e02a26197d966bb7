"""``tierkeeper configs regenerate``: writes through the real file writer, shows progress and
the written / unchanged / failed counts, and exits non-zero when any tenant failed."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from adapters.catalog.toml_loader import load_catalog
from adapters.openclaw.writer import CONFIG_FILE, SECRETS_FILE, FileConfigWriter
from domain.use_cases.configs import Configs
from entrypoints import bootstrap
from entrypoints.cli import main
from entrypoints.settings import Settings
from tests.fakes import FakeKeyStore, InMemoryCredentialRepository, InMemoryTenantRepository
from tests.support.openclaw_variants import all_variants, store_variants

pytestmark = pytest.mark.contract

CHOSEN = ("starter", "premium-default", "byok-openai-valid-fallback")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Services over in-memory repositories and a FileConfigWriter, handed to the CLI in
    place of the composition root's ``build_services``."""
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

    monkeypatch.setattr(bootstrap, "build_services", build_services, raising=False)
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


def test_without_wired_services_the_command_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delattr(bootstrap, "build_services", raising=False)
    assert main(["configs", "regenerate"]) == 2
    assert "build_services" in capsys.readouterr().err
