"""``FileConfigWriter``: each tenant's OpenClaw files, written atomically under one root.

Layout, one directory per tenant (it is the gateway's ``OPENCLAW_STATE_DIR``)::

    <root>/<tenant id>/openclaw.json   the rendered config; never a key, only env references
    <root>/<tenant id>/.env            only when the tenant's route uses its own key: exactly
                                       ``NAME=value`` for that key, mode 0600

Directories are 0700, files 0600. Each file is replaced atomically (temporary file in the
same directory, fsync, rename, fsync of the directory) and only when its bytes differ, so
an unchanged tenant costs two reads and no write.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from adapters.openclaw.render import OPENCLAW_PROVIDER_ENV, render_json
from adapters.openclaw.render import digest as config_digest
from adapters.openclaw.render import render as render_document
from domain.errors import ValidationError
from domain.ids import TenantId
from domain.openclaw_model import TenantConfig, TenantSecret

CONFIG_FILE = "openclaw.json"
SECRETS_FILE = ".env"
DIR_MODE = 0o700
FILE_MODE = 0o600
LEFTOVER_AGE_S = 2.0
"""A temporary file older than this is a crash's leftover, not a write in progress (a write
holds its temporary file for one fsync)."""

_TENANT_DIR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")
_ENV_VALUE = re.compile(r"^[A-Za-z0-9_.~+/=:-]{1,512}$")
"""Characters a dotenv parser reads back verbatim when unquoted (no #, quotes, $, spaces)."""


def env_value(value: str) -> str:
    """``value`` as a dotenv line carries it back verbatim: bare when nothing in it is
    special, else in single quotes, which dotenv (OpenClaw's parser) reads literally. A key
    that passes validation (printable ASCII; no whitespace, quotes or backslash) always fits;
    anything else is refused before a file is touched."""
    if _ENV_VALUE.match(value):
        return value
    if any(ch in value for ch in "'\"\\`") or not value.isascii() or not value.isprintable():
        raise ValidationError("the key has characters a .env file cannot carry", field="api_key")
    if any(ch.isspace() for ch in value):
        raise ValidationError("the key has characters a .env file cannot carry", field="api_key")
    return f"'{value}'"


def tenant_dir_name(tenant_id: str) -> str:
    """The tenant id is the directory name as is; anything that could leave the root
    (separators, ``..``, leading dots, control characters) is refused, never rewritten, so
    two tenants can never share a directory."""
    if not _TENANT_DIR_NAME.match(tenant_id) or tenant_id in {".", ".."}:
        raise ValidationError(
            f"tenant id {tenant_id!r} cannot name a config directory", field="tenant_id"
        )
    return tenant_id


def reserved_env_names(config: TenantConfig) -> frozenset[str]:
    """Names a tenant's key must never use: the platform's own variables in this config,
    the gateway token, OpenClaw's built-in provider variables and its ``OPENCLAW_*``."""
    platform = {p.api_key_env for p in config.providers if not p.tenant_owned}
    return frozenset(platform | {config.gateway_token_env}) | OPENCLAW_PROVIDER_ENV


def check_secret_names(config: TenantConfig) -> None:
    """OpenClaw never lets a ``.env`` value override the process environment, so a tenant
    key under a platform name would silently run (and bill) on the platform's key."""
    reserved = reserved_env_names(config)
    for secret in config.secrets:
        if secret.env_name in reserved or secret.env_name.startswith("OPENCLAW_"):
            raise ValidationError(
                f"the tenant's key cannot be named {secret.env_name}: the platform or OpenClaw"
                " itself uses that variable",
                field="env_name",
            )


def env_file_content(secrets: tuple[TenantSecret, ...]) -> bytes:
    """``NAME=value`` lines, sorted by name; the value is never part of an error message."""
    lines = []
    for secret in sorted(secrets, key=lambda s: s.env_name):
        if not _ENV_NAME.match(secret.env_name):
            raise ValidationError(
                f"{secret.env_name!r} is not a variable name OpenClaw reads", field="env_name"
            )
        lines.append(f"{secret.env_name}={env_value(secret.value.reveal())}\n")
    return "".join(lines).encode("utf-8")


class FileConfigWriter:
    """The ``ConfigWriter`` port on a local directory tree (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    @property
    def root(self) -> Path:
        return self._root

    def __repr__(self) -> str:
        return f"FileConfigWriter(root={str(self._root)!r})"

    def render(self, config: TenantConfig) -> dict[str, Any]:
        return render_document(config)

    def digest(self, config: TenantConfig) -> str:
        """SHA-256 of the ``openclaw.json`` bytes this writer would write."""
        return config_digest(config)

    def tenant_dir(self, tenant_id: TenantId | str) -> Path:
        return self._root / tenant_dir_name(tenant_id)

    async def remove_leftovers(self) -> int:
        """Remove the temporary files a crash left in tenants' directories (a write is cut
        short between creating its temporary file and renaming it). Only files older than
        ``LEFTOVER_AGE_S`` are taken, so a write running in another process is never cut."""
        return await asyncio.to_thread(self._remove_leftovers)

    def _remove_leftovers(self) -> int:
        """Best effort: a directory that cannot be read or cleaned is left as it is (its
        tenant's own write then reports the problem)."""
        removed = 0
        cutoff = time.time() - LEFTOVER_AGE_S
        with contextlib.suppress(OSError):
            for directory in self._root.iterdir():
                if directory.is_symlink() or not directory.is_dir():
                    continue
                removed += _remove_leftovers_in(directory, cutoff)
        return removed

    async def write(self, config: TenantConfig) -> bool:
        """Write the tenant's files off the event loop; False when both were already current."""
        return await asyncio.to_thread(self.write_sync, config)

    def write_sync(self, config: TenantConfig) -> bool:
        directory = self.tenant_dir(config.tenant_id)
        check_secret_names(config)
        config_bytes = render_json(config)
        env_bytes = env_file_content(config.secrets) if config.secrets else None
        self._ensure_dir(directory)
        changed = _replace_if_different(directory, CONFIG_FILE, config_bytes)
        if env_bytes is not None:
            changed = _replace_if_different(directory, SECRETS_FILE, env_bytes) or changed
        else:
            changed = _remove_if_present(directory, SECRETS_FILE) or changed
        if changed:
            _fsync_dir(directory)
        return changed

    def _ensure_dir(self, directory: Path) -> None:
        """Create the root and the tenant directory 0700; never follow a symlinked tenant
        directory; tighten group/other bits on an existing one (never loosen anything)."""
        if not self._root.is_dir():
            self._root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            pass
        else:
            _fsync_dir(self._root)
        info = os.lstat(directory)
        if not stat.S_ISDIR(info.st_mode):
            raise OSError(errno.ENOTDIR, "tenant config path is not a plain directory", directory)
        if info.st_mode & 0o077:
            os.chmod(directory, stat.S_IMODE(info.st_mode) & DIR_MODE)


def _read_current(path: Path) -> tuple[bytes, int] | None:
    """The file's bytes and mode, or None when absent or not a regular file (a symlink or
    anything else gets replaced by the rename)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks), stat.S_IMODE(info.st_mode)
    finally:
        os.close(fd)


def _replace_if_different(directory: Path, name: str, content: bytes) -> bool:
    path = directory / name
    current = _read_current(path)
    if current is not None and hmac.compare_digest(current[0], content):
        if current[1] != FILE_MODE:
            os.chmod(path, FILE_MODE)
        return False
    _atomic_write(directory, name, content)
    return True


def _atomic_write(directory: Path, name: str, content: bytes) -> None:
    """Temporary file (0600) in the same directory, fsync, rename over the target."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, FILE_MODE)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp_name, directory / name)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _remove_leftovers_in(directory: Path, cutoff: float) -> int:
    removed = 0
    with contextlib.suppress(OSError):
        for name in (CONFIG_FILE, SECRETS_FILE):
            for leftover in directory.glob(f".{name}.*.tmp"):
                if leftover.lstat().st_mtime <= cutoff:
                    leftover.unlink()
                    removed += 1
    return removed


def _remove_if_present(directory: Path, name: str) -> bool:
    try:
        os.unlink(directory / name)
    except FileNotFoundError:
        return False
    return True


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
