"""Every config the writer can produce passes the real ``openclaw config validate --json``
of the pinned OpenClaw (2026.9.6 on Node 24, installed from npm into ``.cache/`` on first
use), and a broken one is rejected by it: the validator is really consulted."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import attrs
import pytest

from adapters.catalog.toml_loader import load_catalog
from adapters.openclaw.writer import CONFIG_FILE, FileConfigWriter
from domain.catalog import Catalog
from domain.model_capabilities import INPUT_MODALITIES, ModelCapabilities
from tests.support.openclaw import OPENCLAW_VERSION, OpenClawValidator, ensure_installed
from tests.support.openclaw_variants import all_variants, byok_model_variants

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def validator(tmp_path_factory: pytest.TempPathFactory) -> OpenClawValidator:
    return ensure_installed(scratch=tmp_path_factory.mktemp("openclaw-scratch"))


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog()


def test_the_pinned_openclaw_is_the_one_installed(validator: OpenClawValidator) -> None:
    assert validator.version().startswith(f"OpenClaw {OPENCLAW_VERSION} ")


async def test_every_generated_config_passes_openclaw_config_validate(
    validator: OpenClawValidator, shipped: Catalog, tmp_path: Path
) -> None:
    """43 variants: starter, premium (default, Opus), BYOK 5 providers x 4 key states x
    fallback on/off. Each file the writer wrote is validated; files with identical bytes
    (e.g. a valid and an unverified key) are validated once and share the verdict."""
    writer = FileConfigWriter(tmp_path / "configs")
    variants = all_variants(shipped)
    assert len(variants) == 43
    verdicts: dict[str, tuple[int, bool, tuple[object, ...], tuple[object, ...]]] = {}
    checked: dict[str, str] = {}
    for variant in variants:
        assert await writer.write(variant.config(shipped)) is True
        path = writer.tenant_dir(variant.tenant.id) / CONFIG_FILE
        content_digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if content_digest not in verdicts:
            report = validator.validate(path)
            verdicts[content_digest] = (
                report.exit_code, report.valid, report.issues, report.warnings
            )  # fmt: skip
        checked[variant.name] = content_digest
    assert len(checked) == 43
    failures = {
        name: verdicts[d] for name, d in checked.items() if verdicts[d] != (0, True, (), ())
    }
    assert failures == {}
    # distinct documents: starter, 2 premium, per provider (own key + fallback, own key only),
    # and the two provider-independent ones (starter route; no usable model)
    assert len(verdicts) == 1 + 2 + 5 * 2 + 2


async def test_every_byok_model_with_its_capabilities_passes_openclaw_config_validate(
    validator: OpenClawValidator, shipped: Catalog, tmp_path: Path
) -> None:
    """Each model each BYOK provider lists, and an unlisted OpenRouter model, written with
    its capabilities as the tenant's primary, plus one model reading every input kind the
    catalog accepts: 15 files, every one valid with no issue and no warning."""
    writer = FileConfigWriter(tmp_path / "configs")
    every_input = ModelCapabilities(INPUT_MODALITIES, True, 1_048_576, 65_536)
    openrouter = attrs.evolve(shipped.byok_provider("openrouter"), unlisted_model=every_input)
    every_input_catalog = attrs.evolve(
        shipped,
        byok_providers=tuple(
            openrouter if p.id == "openrouter" else p for p in shipped.byok_providers
        ),
    )
    variants = byok_model_variants(shipped)
    last = variants[-1]
    variants.append(attrs.evolve(last, name="every-input"))
    verdicts: dict[str, tuple[int, bool, tuple[object, ...], tuple[object, ...]]] = {}
    for variant in variants:
        catalog = every_input_catalog if variant.name == "every-input" else shipped
        assert await writer.write(variant.config(catalog)) is True
        path = writer.tenant_dir(variant.tenant.id) / CONFIG_FILE
        if variant.name == "every-input":
            rows = json.loads(path.read_text())["models"]["providers"]["byok-openrouter"]["models"]
            assert rows[0]["input"] == ["text", "image", "video", "audio"]
        report = validator.validate(path)
        verdicts[variant.name] = (report.exit_code, report.valid, report.issues, report.warnings)
    assert len(verdicts) == sum(len(p.models) for p in shipped.byok_providers) + 2 == 15
    assert {name: v for name, v in verdicts.items() if v != (0, True, (), ())} == {}


async def test_a_broken_config_is_rejected_with_its_issues(
    validator: OpenClawValidator, shipped: Catalog, tmp_path: Path
) -> None:
    writer = FileConfigWriter(tmp_path / "configs")
    variant = next(v for v in all_variants(shipped) if v.name == "premium-default")
    await writer.write(variant.config(shipped))
    path = writer.tenant_dir(variant.tenant.id) / CONFIG_FILE
    assert validator.validate(path).valid is True

    document = json.loads(path.read_text())
    document["models"]["providers"]["anthropic"]["api"] = "openai-chat"
    document["models"]["providers"]["moonshot"]["models"][0]["temperature"] = 0.2
    document["tools"]["profile"] = "pro"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))

    report = validator.validate(broken)
    assert report.exit_code == 1
    assert report.valid is False
    paths = {issue["path"] for issue in report.issues}
    assert {
        "models.providers.anthropic.api",
        "models.providers.moonshot.models.0",
        "tools.profile",
    } <= paths, report.issues
