"""Tool policies built from plain data: every name checked, every default the safe one."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import CatalogError
from domain.tool_policy import (
    SandboxMode,
    SandboxPolicy,
    ToolPolicy,
    ToolProfile,
    WorkspaceAccess,
    build_tool_policy,
    check_tool_names,
)


def test_a_policy_naming_only_its_profile_gets_the_safe_defaults() -> None:
    """No allow or deny list, no elevated exec, workspace-only files, no sandbox."""
    assert build_tool_policy("plain", {"profile": "minimal"}) == ToolPolicy(
        name="plain",
        profile=ToolProfile.MINIMAL,
        allow=(),
        deny=(),
        elevated=False,
        fs_workspace_only=True,
        sandbox=SandboxPolicy(SandboxMode.OFF, "agent", WorkspaceAccess.NONE),
    )


def test_every_field_given_is_carried_into_the_policy() -> None:
    spec: dict[str, Any] = {
        "profile": "full",
        "allow": ["exec", "group:web"],
        "deny": ["browser", "group:ui"],
        "elevated": True,
        "fs_workspace_only": False,
        "sandbox": {"mode": "non-main", "scope": "shared", "workspace_access": "ro"},
    }
    assert build_tool_policy("open", spec) == ToolPolicy(
        name="open",
        profile=ToolProfile.FULL,
        allow=("exec", "group:web"),
        deny=("browser", "group:ui"),
        elevated=True,
        fs_workspace_only=False,
        sandbox=SandboxPolicy(SandboxMode.NON_MAIN, "shared", WorkspaceAccess.READ_ONLY),
    )


def test_a_sandbox_table_without_scope_uses_the_agent_scope() -> None:
    policy = build_tool_policy("p", {"profile": "coding", "sandbox": {"mode": "all"}})
    assert policy.sandbox == SandboxPolicy(SandboxMode.ALL, "agent", WorkspaceAccess.NONE)
    assert policy.sandboxed() is True


@pytest.mark.parametrize("scope", ["session", "agent", "shared"])
def test_each_documented_sandbox_scope_is_accepted(scope: str) -> None:
    policy = build_tool_policy("p", {"profile": "coding", "sandbox": {"scope": scope}})
    assert policy.sandbox.scope == scope


@pytest.mark.parametrize(
    ("field", "names", "detail"),
    [
        ("allow", ["shell"], "tool policy 'p' allow: unknown tool or group 'shell'"),
        ("deny", ["group:bogus"], "tool policy 'p' deny: unknown tool or group 'group:bogus'"),
    ],
)
def test_an_unknown_name_is_refused_naming_the_policy_and_list(
    field: str, names: list[str], detail: str
) -> None:
    with pytest.raises(CatalogError) as raised:
        build_tool_policy("p", {"profile": "coding", field: names})
    assert (raised.value.code, raised.value.detail) == ("catalog_error", detail)


def test_an_unknown_sandbox_scope_is_refused_naming_it() -> None:
    with pytest.raises(CatalogError) as raised:
        build_tool_policy("p", {"profile": "coding", "sandbox": {"scope": "tenant"}})
    assert raised.value.detail == "tool policy 'p': sandbox scope 'tenant' is not known"


def test_known_tools_and_groups_pass_whatever_their_case() -> None:
    """OpenClaw matches tool names case-insensitively, so the check does too."""
    check_tool_names(("exec", "Web_Fetch", "group:fs", "GROUP:Runtime"), "here")


@pytest.mark.parametrize("name", ["group:exec", "runtime", "group:"])
def test_a_tool_name_is_not_a_group_and_a_group_is_not_a_tool(name: str) -> None:
    with pytest.raises(CatalogError) as raised:
        check_tool_names(("read", name), "where")
    assert raised.value.detail == f"where: unknown tool or group {name!r}"
