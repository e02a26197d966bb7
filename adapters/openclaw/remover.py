"""``FileConfigRemover``: deletes a tenant's OpenClaw directory (config and ``.env``) under
the root the ``FileConfigWriter`` writes to, when its account is deleted."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import attrs

from adapters.openclaw.writer import tenant_dir_name
from domain.ids import TenantId


@attrs.frozen
class FileConfigRemover:
    root: Path

    async def remove(self, tenant_id: TenantId) -> bool:
        """The tenant's directory and everything in it; a symlink in its place is unlinked,
        never followed."""
        directory = self.root / tenant_dir_name(tenant_id)
        return await asyncio.to_thread(_remove, directory)


def _remove(directory: Path) -> bool:
    if directory.is_symlink():
        directory.unlink()
        return True
    if not directory.exists():
        return False
    shutil.rmtree(directory)
    return True
