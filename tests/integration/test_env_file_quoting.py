"""Every key that passes validation is written to the tenant's ``.env`` so that OpenClaw's
own dotenv parser reads back exactly that key (spec §3: saving is all or nothing, and the
secrets-file writer quotes what it must)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from adapters.openclaw.writer import env_file_content
from domain.byok import KEY_FORBIDDEN
from domain.openclaw_model import TenantSecret
from domain.secrets import Secret
from tests.support.openclaw import OpenClawValidator, ensure_installed

pytestmark = pytest.mark.integration

# every printable ASCII character validation lets through, in awkward places
ALLOWED = "".join(ch for ch in map(chr, range(33, 127)) if ch not in KEY_FORBIDDEN)
KEYS = (
    "sk-plain_key-123",
    "sk-abc#def",
    "sk-#",
    "sk-abc$HOME",
    "sk-${HOME}x",
    "sk-a=b=c",
    "sk-" + ALLOWED,
    "sk-ends-with-hash#",
    "sk-%s&*(){}[]|;<>?,!@~",
)


@pytest.fixture(scope="module")
def openclaw(tmp_path_factory: pytest.TempPathFactory) -> OpenClawValidator:
    return ensure_installed(scratch=tmp_path_factory.mktemp("openclaw-scratch"))


def parse_with_openclaws_dotenv(validator: OpenClawValidator, env_file: Path) -> dict[str, str]:
    dotenv = validator.entrypoint.parent.parent / "dotenv"
    script = (
        f"const d = require({json.dumps(str(dotenv))});"
        f"const fs = require('fs');"
        f"process.stdout.write(JSON.stringify(d.parse(fs.readFileSync({json.dumps(str(env_file))}))))"
    )
    done = subprocess.run(
        [str(validator.node), "-e", script], capture_output=True, text=True, check=True, timeout=60
    )
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize("key", KEYS)
def test_openclaws_dotenv_reads_back_every_valid_key(
    openclaw: OpenClawValidator, tmp_path: Path, key: str
) -> None:
    env_file = tmp_path / ".env"
    secret = TenantSecret("TIERKEEPER_BYOK_OPENAI_KEY", Secret(key))
    env_file.write_bytes(env_file_content((secret,)))
    assert parse_with_openclaws_dotenv(openclaw, env_file) == {"TIERKEEPER_BYOK_OPENAI_KEY": key}
