"""``FileConfigWriter`` on a real directory: file modes, the secrets file, atomic replacement,
unchanged-skip, path safety, and a read-only root failing without harming old configs."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from pathlib import Path

import attrs
import pytest

from adapters.catalog.toml_loader import load_catalog
from adapters.openclaw.render import render_json
from adapters.openclaw.writer import CONFIG_FILE, SECRETS_FILE, FileConfigWriter
from domain.catalog import Catalog
from domain.errors import ValidationError
from domain.ids import TenantId
from domain.openclaw_model import TenantConfig
from domain.secrets import Secret
from domain.use_cases.configs import Configs
from tests.fakes import FakeKeyStore, InMemoryCredentialRepository, InMemoryTenantRepository
from tests.support.openclaw_variants import Variant, all_variants, store_variants

pytestmark = pytest.mark.contract

NOBODY = 65534


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def variants(shipped: Catalog) -> dict[str, Variant]:
    return {v.name: v for v in all_variants(shipped)}


@pytest.fixture
def writer(tmp_path: Path) -> FileConfigWriter:
    return FileConfigWriter(tmp_path / "configs")


def byok(shipped: Catalog, variants: dict[str, Variant], name: str) -> TenantConfig:
    return variants[name].config(shipped)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


async def test_a_byok_tenant_gets_a_0600_env_holding_exactly_its_key(
    writer: FileConfigWriter, shipped: Catalog, variants: dict[str, Variant]
) -> None:
    config = byok(shipped, variants, "byok-anthropic-valid-fallback")
    key = variants["byok-anthropic-valid-fallback"].api_key
    assert key is not None
    await writer.write(config)
    directory = writer.tenant_dir(config.tenant_id)
    env = directory / SECRETS_FILE
    assert mode(directory) == 0o700
    assert mode(env) == 0o600
    assert mode(directory / CONFIG_FILE) == 0o600
    assert env.read_text() == f"TIERKEEPER_BYOK_ANTHROPIC_KEY={key.reveal()}\n"
    assert sorted(p.name for p in directory.iterdir()) == [SECRETS_FILE, CONFIG_FILE]


async def test_openclaw_json_never_contains_any_tenant_key(
    writer: FileConfigWriter, shipped: Catalog, variants: dict[str, Variant]
) -> None:
    for variant in variants.values():
        await writer.write(variant.config(shipped))
        text = (writer.tenant_dir(variant.tenant.id) / CONFIG_FILE).read_text()
        assert "TESTKEY" not in text
        if variant.api_key is not None:
            assert variant.api_key.reveal() not in text
        assert json.loads(text) == writer.render(variant.config(shipped))


async def test_platform_only_tenants_get_no_env_file(
    writer: FileConfigWriter, shipped: Catalog, variants: dict[str, Variant]
) -> None:
    for name in ("starter", "premium-default", "byok-google-invalid-fallback"):
        config = variants[name].config(shipped)
        await writer.write(config)
        assert not (writer.tenant_dir(config.tenant_id) / SECRETS_FILE).exists()


async def test_a_stale_env_is_removed_when_the_tenant_no_longer_uses_its_key(
    writer: FileConfigWriter, shipped: Catalog, variants: dict[str, Variant]
) -> None:
    own = byok(shipped, variants, "byok-openai-valid-fallback")
    invalid = attrs.evolve(
        byok(shipped, variants, "byok-openai-invalid-fallback"), tenant_id=own.tenant_id
    )
    await writer.write(own)
    env = writer.tenant_dir(own.tenant_id) / SECRETS_FILE
    assert env.exists()
    assert await writer.write(invalid) is True
    assert not env.exists()
    assert await writer.write(invalid) is False


async def test_unchanged_content_is_not_rewritten(
    writer: FileConfigWriter, shipped: Catalog, variants: dict[str, Variant]
) -> None:
    config = byok(shipped, variants, "byok-groq-unverified-nofallback")
    assert await writer.write(config) is True
    directory = writer.tenant_dir(config.tenant_id)
    before = {n: os.stat(directory / n) for n in (CONFIG_FILE, SECRETS_FILE)}
    assert await writer.write(config) is False
    after = {n: os.stat(directory / n) for n in (CONFIG_FILE, SECRETS_FILE)}
    for name in before:
        assert after[name].st_ino == before[name].st_ino
        assert after[name].st_mtime_ns == before[name].st_mtime_ns


async def test_a_rotated_key_rewrites_only_the_env_file(
    writer: FileConfigWriter, shipped: Catalog, variants: dict[str, Variant]
) -> None:
    config = byok(shipped, variants, "byok-openrouter-valid-fallback")
    await writer.write(config)
    directory = writer.tenant_dir(config.tenant_id)
    config_inode = os.stat(directory / CONFIG_FILE).st_ino
    rotated = attrs.evolve(
        config, secrets=(attrs.evolve(config.secrets[0], value=Secret("sk-or-v1-rotatedx9Qa")),)
    )
    assert await writer.write(rotated) is True
    assert os.stat(directory / CONFIG_FILE).st_ino == config_inode
    assert (directory / SECRETS_FILE).read_text() == (
        "TIERKEEPER_BYOK_OPENROUTER_KEY=sk-or-v1-rotatedx9Qa\n"
    )


async def test_changed_content_replaces_the_file_by_rename(
    writer: FileConfigWriter, shipped: Catalog, variants: dict[str, Variant]
) -> None:
    """A new inode proves a rename, not an in-place rewrite a reader could catch half-done."""
    own = byok(shipped, variants, "byok-openai-valid-fallback")
    other = attrs.evolve(
        byok(shipped, variants, "byok-openai-valid-nofallback"), tenant_id=own.tenant_id
    )
    await writer.write(own)
    path = writer.tenant_dir(own.tenant_id) / CONFIG_FILE
    inode = os.stat(path).st_ino
    assert await writer.write(other) is True
    assert os.stat(path).st_ino != inode
    assert path.read_bytes() == render_json(other)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


async def test_a_failed_rename_keeps_the_old_file_and_leaves_no_temporary_file(
    writer: FileConfigWriter,
    shipped: Catalog,
    variants: dict[str, Variant],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own = byok(shipped, variants, "byok-openai-valid-fallback")
    other = attrs.evolve(
        byok(shipped, variants, "byok-openai-valid-nofallback"), tenant_id=own.tenant_id
    )
    await writer.write(own)
    path = writer.tenant_dir(own.tenant_id) / CONFIG_FILE
    old = path.read_bytes()

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        await writer.write(other)
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert sorted(p.name for p in path.parent.iterdir()) == [SECRETS_FILE, CONFIG_FILE]


async def test_loose_permissions_are_tightened(
    writer: FileConfigWriter, shipped: Catalog, variants: dict[str, Variant]
) -> None:
    config = byok(shipped, variants, "byok-google-valid-fallback")
    await writer.write(config)
    directory = writer.tenant_dir(config.tenant_id)
    os.chmod(directory, 0o755)  # noqa: S103 - the loose mode is the point
    os.chmod(directory / SECRETS_FILE, 0o644)
    assert await writer.write(config) is False
    assert mode(directory) == 0o700
    assert mode(directory / SECRETS_FILE) == 0o600


@pytest.mark.parametrize(
    "tenant_id", ["..", ".", "../escape", "a/b", "/abs", ".hidden", "", "a\x00b", "a b", "é"]
)
async def test_tenant_ids_that_could_leave_the_root_are_refused(
    writer: FileConfigWriter,
    shipped: Catalog,
    variants: dict[str, Variant],
    tenant_id: str,
    tmp_path: Path,
) -> None:
    config = attrs.evolve(variants["starter"].config(shipped), tenant_id=TenantId(tenant_id))
    with pytest.raises(ValidationError) as raised:
        await writer.write(config)
    assert raised.value.field == "tenant_id"
    assert not (tmp_path / "escape").exists()
    assert not list(tmp_path.rglob(CONFIG_FILE))  # noqa: ASYNC240


async def test_a_symlinked_tenant_directory_is_refused(
    writer: FileConfigWriter, shipped: Catalog, variants: dict[str, Variant], tmp_path: Path
) -> None:
    config = variants["starter"].config(shipped)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    writer.root.mkdir(parents=True)
    writer.tenant_dir(config.tenant_id).symlink_to(elsewhere)
    with pytest.raises(OSError, match="not a plain directory"):
        await writer.write(config)
    assert list(elsewhere.iterdir()) == []


async def test_a_key_a_dotenv_parser_would_mangle_is_refused_without_naming_it(
    writer: FileConfigWriter, shipped: Catalog, variants: dict[str, Variant]
) -> None:
    config = byok(shipped, variants, "byok-openai-valid-fallback")
    odd = attrs.evolve(
        config, secrets=(attrs.evolve(config.secrets[0], value=Secret("sk-abc#def'ghi")),)
    )
    with pytest.raises(ValidationError) as raised:
        await writer.write(odd)
    assert "sk-abc" not in str(raised.value)
    assert "sk-abc" not in repr(raised.value)
    assert not writer.tenant_dir(config.tenant_id).exists()


def test_the_writer_repr_shows_only_its_root(writer: FileConfigWriter) -> None:
    assert repr(writer) == f"FileConfigWriter(root={str(writer.root)!r})"


# --- a read-only config root -------------------------------------------------------------


def _make_read_only(root: Path, owner: int | None) -> None:
    for path in [root, *root.rglob("*")]:
        if owner is not None:
            os.chown(path, owner, owner, follow_symlinks=False)
        os.chmod(path, 0o500 if path.is_dir() else 0o400)


def _regenerate_in_child(configs: Configs, unprivileged: bool) -> dict[str, object]:
    """Regenerate in a forked child (as ``nobody`` when the tests run as root, since root
    ignores permission bits); the summary comes back as JSON over a pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.close(read_end)
            if unprivileged:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            summary = asyncio.run(configs.regenerate())
            payload = {
                "written": summary.written,
                "unchanged": summary.unchanged,
                "failed": [list(f) for f in summary.failed],
            }
        except BaseException as exc:
            payload, code = {"error": repr(exc)}, 1
        os.write(write_end, json.dumps(payload).encode())
        os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    result: dict[str, object] = json.loads(b"".join(chunks))
    return result


async def test_a_read_only_root_fails_every_write_counted_and_old_configs_stay(
    tmp_path: Path, shipped: Catalog, variants: dict[str, Variant]
) -> None:
    chosen = [variants[n] for n in ("starter", "premium-default", "byok-openai-valid-fallback")]
    tenants, credentials, key_store = (
        InMemoryTenantRepository(),
        InMemoryCredentialRepository(),
        FakeKeyStore(),
    )
    await store_variants(chosen, tenants, credentials, key_store)
    root = tmp_path / "configs"
    writer = FileConfigWriter(root)
    configs = Configs(shipped, tenants, credentials, key_store, writer)
    first = await configs.regenerate()
    assert (first.written, first.unchanged, first.failed) == (3, 0, ())
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert len(before) == 4

    # every tenant changes (premium now on Opus, starter upgraded, byok opts out of fallback)
    # and a new tenant appears, so each needs a write the read-only root must refuse
    new = variants["premium-claude-opus-4-6"]
    await store_variants([new], tenants, credentials, key_store)
    tenants.tenants[TenantId("starter")] = attrs.evolve(variants["starter"].tenant, tier="premium")
    tenants.tenants[TenantId("premium-default")] = attrs.evolve(
        variants["premium-default"].tenant, model_preference="anthropic/claude-opus-4-6"
    )
    byok_id = TenantId("byok-openai-valid-fallback")
    stored = await credentials.get(byok_id)
    assert stored is not None
    await credentials.put(attrs.evolve(stored, allow_platform_fallback=False))

    as_root = os.geteuid() == 0
    _make_read_only(root, NOBODY if as_root else None)
    try:
        result = _regenerate_in_child(configs, unprivileged=as_root)
    finally:
        for path in [root, *root.rglob("*")]:
            os.chmod(path, 0o700 if path.is_dir() else 0o600)

    assert "error" not in result, result
    assert result["written"] == 0
    assert result["unchanged"] == 0
    failed = dict(result["failed"])  # type: ignore[arg-type]
    assert sorted(failed) == sorted([*(v.tenant.id for v in chosen), new.tenant.id])
    assert all("PermissionError" in reason for reason in failed.values()), failed
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert not [p for p in root.rglob("*.tmp")]


async def test_leftovers_of_crashed_writes_are_removed_and_writes_in_progress_kept(
    tmp_path: Path,
) -> None:
    """A crash between creating a temporary file and renaming it leaves the file (it may hold
    a key); ``remove_leftovers`` removes those, never one younger than a write takes."""
    root = tmp_path / "configs"
    for tenant in ("t1", "t2"):
        (root / tenant).mkdir(parents=True)
    stale = [root / "t1" / "..env.abc123.tmp", root / "t2" / ".openclaw.json.x9.tmp"]
    fresh = root / "t2" / "..env.inflight.tmp"
    kept = root / "t1" / ".env"
    for path in [*stale, fresh, kept]:
        path.write_text("secret")
    old = time.time() - 60
    for path in stale:
        os.utime(path, (old, old))
    assert await FileConfigWriter(root).remove_leftovers() == 2
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == ["..env.inflight.tmp", ".env"]
