"""Proxy-mode configs (spec §13) for every tier and BYOK provider pass the pinned OpenClaw's
``openclaw config validate``, point every provider at the proxy, and carry the tenant's
virtual key as their only credential."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from adapters.catalog.toml_loader import load_catalog
from adapters.openclaw.writer import CONFIG_FILE, SECRETS_FILE, FileConfigWriter
from domain.catalog import Catalog
from domain.openclaw_model import ProxyEndpoint, through_proxy
from domain.virtual_keys import VIRTUAL_KEY_ENV, new_virtual_key
from tests.support.openclaw import OpenClawValidator, ensure_installed
from tests.support.openclaw_variants import all_variants

pytestmark = pytest.mark.integration

PROXY_URL = "http://tierkeeper.internal:8000"


@pytest.fixture(scope="module")
def validator(tmp_path_factory: pytest.TempPathFactory) -> OpenClawValidator:
    return ensure_installed(scratch=tmp_path_factory.mktemp("openclaw-scratch"))


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog()


async def test_every_proxy_mode_config_passes_openclaw_config_validate(
    validator: OpenClawValidator, shipped: Catalog, tmp_path: Path
) -> None:
    """All 43 variants (starter, premium, BYOK 5 providers x 4 key states x fallback on/off)
    rendered for proxy mode; each distinct file is validated once."""
    writer = FileConfigWriter(tmp_path / "configs")
    verdicts: dict[str, tuple[int, bool, tuple[object, ...], tuple[object, ...]]] = {}
    failures = {}
    variants = all_variants(shipped)
    assert len(variants) == 43
    for variant in variants:
        key = new_virtual_key()
        config = through_proxy(variant.config(shipped), ProxyEndpoint(PROXY_URL, key))
        await writer.write(config)
        directory = writer.tenant_dir(variant.tenant.id)
        path = directory / CONFIG_FILE
        assert (directory / SECRETS_FILE).read_text() == f"{VIRTUAL_KEY_ENV}={key.reveal()}\n"
        # every provider at the proxy, on the virtual key, and no other variable named
        document = json.loads(path.read_text())
        providers = document["models"]["providers"]
        assert bool(providers) is (config.route.primary is not None), variant.name
        for provider in providers.values():
            assert provider["baseUrl"] in (PROXY_URL, f"{PROXY_URL}/v1"), variant.name
            assert provider["apiKey"] == {"source": "env", "provider": "default",
                                          "id": VIRTUAL_KEY_ENV}  # fmt: skip
            assert provider["api"] in ("openai-completions", "anthropic-messages")
        text = path.read_text()
        for platform in shipped.platform_providers:
            assert platform.env_var not in text
        for byok in shipped.byok_providers:
            assert byok.env_var not in text
        if variant.api_key is not None:
            assert variant.api_key.reveal() not in text
            assert variant.api_key.reveal() not in (directory / SECRETS_FILE).read_text()
        # the key differs per variant, the config does not: validate each document once
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in verdicts:
            report = validator.validate(path)
            verdicts[digest] = (report.exit_code, report.valid, report.issues, report.warnings)
        if verdicts[digest] != (0, True, (), ()):
            failures[variant.name] = verdicts[digest]
    assert failures == {}
    assert len(verdicts) == 1 + 2 + 5 * 2 + 2
