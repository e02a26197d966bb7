"""The ``ConfigWriter`` contract, for the in-memory double and the file writer alike: a
first write reports True, the same config again False, a changed config True; ``render``
gives a JSON-ready document that names no secret."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from adapters.catalog.toml_loader import load_catalog
from adapters.openclaw.writer import FileConfigWriter
from domain.catalog import Catalog
from domain.ports import ConfigWriter
from tests.fakes import InMemoryConfigWriter
from tests.support.openclaw_variants import Variant, all_variants

pytestmark = pytest.mark.contract

WRITERS: dict[str, Callable[[Path], ConfigWriter]] = {
    "in-memory": lambda _root: InMemoryConfigWriter(),
    "file": lambda root: FileConfigWriter(root),
}


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def variants(shipped: Catalog) -> dict[str, Variant]:
    return {v.name: v for v in all_variants(shipped)}


@pytest.fixture(params=sorted(WRITERS))
def writer(request: pytest.FixtureRequest, tmp_path: Path) -> ConfigWriter:
    return WRITERS[request.param](tmp_path / "configs")


async def test_first_write_reports_written_and_the_same_config_again_unchanged(
    writer: ConfigWriter, shipped: Catalog, variants: dict[str, Variant]
) -> None:
    config = variants["byok-openai-valid-fallback"].config(shipped)
    assert await writer.write(config) is True
    assert await writer.write(config) is False


async def test_a_changed_config_is_written_again(
    writer: ConfigWriter, shipped: Catalog, variants: dict[str, Variant]
) -> None:
    before = variants["byok-groq-valid-fallback"].config(shipped)
    after = variants["byok-groq-invalid-fallback"].config(shipped)
    assert before.tenant_id != after.tenant_id
    after = attrs.evolve(after, tenant_id=before.tenant_id)
    assert await writer.write(before) is True
    assert await writer.write(after) is True
    assert await writer.write(after) is False


async def test_tenants_are_written_independently(
    writer: ConfigWriter, shipped: Catalog, variants: dict[str, Variant]
) -> None:
    assert await writer.write(variants["starter"].config(shipped)) is True
    assert await writer.write(variants["premium-default"].config(shipped)) is True
    assert await writer.write(variants["starter"].config(shipped)) is False


def test_render_is_json_ready_and_names_no_secret(
    writer: ConfigWriter, shipped: Catalog, variants: dict[str, Variant]
) -> None:
    for name in ("starter", "byok-anthropic-unverified-fallback"):
        config = variants[name].config(shipped)
        text = json.dumps(writer.render(config))
        for secret in config.secrets:
            assert secret.value.reveal() not in text
        assert "moonshot/kimi-k2.5" in text
