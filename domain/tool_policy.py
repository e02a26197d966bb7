"""Tool policy per tier: OpenClaw tool profile, allow/deny lists, sandbox and elevated exec.

OpenClaw accepts unknown tool and group names silently, so every name is checked here
against the tools and groups OpenClaw 2026.9.6 documents.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from domain.errors import CatalogError

KNOWN_TOOL_GROUPS = frozenset(
    {
        "group:runtime", "group:fs", "group:sessions", "group:memory", "group:web",
        "group:ui", "group:automation", "group:messaging", "group:nodes", "group:agents",
        "group:media", "group:openclaw", "group:plugins",
    }
)  # fmt: skip
KNOWN_TOOLS = frozenset(
    {
        "exec", "bash", "process", "code_execution", "read", "write", "edit", "apply_patch",
        "memory_search", "memory_get", "web_search", "x_search", "web_fetch", "browser",
        "screen", "canvas", "terminal", "cron", "gateway", "plugins", "message", "nodes",
        "computer", "view_image", "image_generate", "music_generate", "video_generate",
        "tts", "pdf", "session_status", "subagents", "ask_user",
    }
)  # fmt: skip


class ToolProfile(enum.Enum):
    MINIMAL = "minimal"
    CODING = "coding"
    MESSAGING = "messaging"
    FULL = "full"


class SandboxMode(enum.Enum):
    OFF = "off"
    NON_MAIN = "non-main"
    ALL = "all"


class WorkspaceAccess(enum.Enum):
    NONE = "none"
    READ_ONLY = "ro"
    READ_WRITE = "rw"


@attrs.frozen
class SandboxPolicy:
    mode: SandboxMode
    scope: str
    workspace_access: WorkspaceAccess


@attrs.frozen
class ToolPolicy:
    """What an agent of a tier may run. Deny wins over allow; elevated exec stays off."""

    name: str
    profile: ToolProfile
    allow: tuple[str, ...]
    deny: tuple[str, ...]
    elevated: bool
    fs_workspace_only: bool
    sandbox: SandboxPolicy

    def sandboxed(self) -> bool:
        return self.sandbox.mode is not SandboxMode.OFF


def check_tool_names(names: tuple[str, ...], where: str) -> None:
    """Every entry is a known tool or ``group:`` name; a typo would silently allow or deny."""
    for name in names:
        lowered = name.lower()
        known = KNOWN_TOOL_GROUPS if lowered.startswith("group:") else KNOWN_TOOLS
        if lowered not in known:
            raise CatalogError(f"{where}: unknown tool or group {name!r}")


def catalog_flag(spec: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    """A catalog switch is a TOML boolean or absent; anything else (a quoted ``"false"``,
    which ``bool()`` would read as true) is refused."""
    value = spec.get(key, default)
    if not isinstance(value, bool):
        raise CatalogError(f"{where}: {key} must be true or false, got {value!r}")
    return value


def build_tool_policy(name: str, spec: Mapping[str, Any]) -> ToolPolicy:
    """Build one named tool policy from plain data, checking every tool and group name."""
    allow = tuple(str(n) for n in spec.get("allow", ()))
    deny = tuple(str(n) for n in spec.get("deny", ()))
    check_tool_names(allow, f"tool policy {name!r} allow")
    check_tool_names(deny, f"tool policy {name!r} deny")
    sandbox = spec.get("sandbox", {})
    if not isinstance(sandbox, Mapping):
        raise CatalogError(f"tool policy {name!r}: sandbox must be a table, got {sandbox!r}")
    scope = str(sandbox.get("scope", "agent"))
    if scope not in {"session", "agent", "shared"}:
        raise CatalogError(f"tool policy {name!r}: sandbox scope {scope!r} is not known")
    try:
        return ToolPolicy(
            name=name,
            profile=ToolProfile(spec["profile"]),
            allow=allow,
            deny=deny,
            elevated=catalog_flag(spec, "elevated", False, f"tool policy {name!r}"),
            fs_workspace_only=catalog_flag(
                spec, "fs_workspace_only", True, f"tool policy {name!r}"
            ),
            sandbox=SandboxPolicy(
                mode=SandboxMode(sandbox.get("mode", "off")),
                scope=scope,
                workspace_access=WorkspaceAccess(sandbox.get("workspace_access", "none")),
            ),
        )
    except ValueError as exc:
        raise CatalogError(f"tool policy {name!r}: {exc}") from None
