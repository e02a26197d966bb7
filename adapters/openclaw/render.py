"""Render a ``TenantConfig`` to the JSON document OpenClaw 2026.9.6 reads as ``openclaw.json``.

One cattrs converter, private to this module, turns the domain's values into OpenClaw's
strict schema (see ``docs/adr/0004-openclaw-version-pin.md``). The rendering is a pure
function of the config: keys are sorted and numbers normalised, so the bytes (and their
digest) only change when the config does.

Credentials are never rendered. Every key, platform or tenant, appears as a SecretRef
object ``{"source": "env", "provider": "default", "id": NAME}`` naming the variable that
holds it; the tenant's own key lives in its ``.env`` (written by the file writer).
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal
from typing import Any

import cattrs

from domain.model_capabilities import ModelCapabilities
from domain.openclaw_model import ModelEntry, ProviderEntry, TenantConfig, TenantSecret
from domain.routing import Route
from domain.secrets import Secret
from domain.tool_policy import SandboxPolicy, ToolPolicy

OPENCLAW_VERSION = "2026.9.6"
"""The OpenClaw release whose schema this renderer targets and whose validator gates it."""

SECRET_PROVIDER = "default"

OPENCLAW_PROVIDER_ENV = frozenset(
    {
        "OPENAI_API_KEY", "OPENAI_API_KEYS", "ANTHROPIC_API_KEY", "ANTHROPIC_API_KEYS",
        "ANTHROPIC_OAUTH_TOKEN", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GROQ_API_KEY",
        "OPENROUTER_API_KEY", "MOONSHOT_API_KEY", "MINIMAX_API_KEY", "MINIMAX_OAUTH_TOKEN",
        "KIMI_API_KEY",
    }
)  # fmt: skip
"""Variables OpenClaw 2026.9.6's built-in providers read on their own (plugin manifests).
A tenant's key under one of these names could be shadowed by, or bill, the platform."""
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")


def env_ref(name: str) -> dict[str, str]:
    """A SecretRef to an environment variable: OpenClaw resolves it at run time, the file
    never holds the value."""
    if not _ENV_NAME.match(name):
        raise ValueError(f"{name!r} is not an environment variable name OpenClaw accepts")
    return {"source": "env", "provider": SECRET_PROVIDER, "id": name}


def literal(text: str) -> str:
    """OpenClaw substitutes ``${VAR}`` in every string of the config; ``$${`` keeps a
    literal ``${``, so no catalog or tenant text can pull a variable into the file."""
    return text.replace("${", "$${")


def _number(value: Decimal) -> int | float:
    """USD rates as plain JSON numbers: integral values as ints, others as floats."""
    normalised = value.normalize()
    if normalised == normalised.to_integral_value():
        return int(normalised)
    return float(normalised)


def _capabilities(capabilities: ModelCapabilities) -> dict[str, Any]:
    """A model entry's capability keys, exactly as the catalog states them."""
    return {
        "reasoning": capabilities.reasoning,
        "input": list(capabilities.input_modalities),
        "contextWindow": capabilities.context_window,
        "maxTokens": capabilities.max_tokens,
    }


def _model(entry: ModelEntry) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": literal(entry.id),
        "name": literal(entry.name),
        **_CONVERTER.unstructure(entry.capabilities, ModelCapabilities),
    }
    rates = (entry.usd_per_mtok_input, entry.usd_per_mtok_output, entry.usd_per_mtok_cache_read)
    if all(rate is not None for rate in rates):
        row["cost"] = {
            "input": _CONVERTER.unstructure(entry.usd_per_mtok_input),
            "output": _CONVERTER.unstructure(entry.usd_per_mtok_output),
            "cacheRead": _CONVERTER.unstructure(entry.usd_per_mtok_cache_read),
        }
    return row


def _provider(entry: ProviderEntry) -> dict[str, Any]:
    return {
        "baseUrl": literal(entry.base_url),
        "api": entry.api,
        "apiKey": env_ref(entry.api_key_env),
        "models": [_CONVERTER.unstructure(m, ModelEntry) for m in entry.models],
    }


def _sandbox(policy: SandboxPolicy) -> dict[str, Any]:
    return {
        "mode": policy.mode.value,
        "scope": policy.scope,
        "workspaceAccess": policy.workspace_access.value,
    }


def _tools(policy: ToolPolicy) -> dict[str, Any]:
    tools: dict[str, Any] = {
        "profile": policy.profile.value,
        "elevated": {"enabled": policy.elevated},
        "fs": {"workspaceOnly": policy.fs_workspace_only},
    }
    if policy.allow:
        tools["allow"] = list(policy.allow)
    if policy.deny:
        tools["deny"] = list(policy.deny)
    return tools


def _refuse_secret(value: object) -> object:
    raise TypeError("secrets are never rendered into openclaw.json")


def _model_policy_refs(config: TenantConfig) -> list[str]:
    """Every model the tenant may run: its route and its tier's selectable models."""
    primary, fallbacks = config.route.refs()
    refs = [primary] if primary else []
    refs += [*fallbacks, *config.selectable_models]
    return sorted(set(refs))


def _agent_defaults(config: TenantConfig) -> dict[str, Any]:
    defaults: dict[str, Any] = {"sandbox": _CONVERTER.unstructure(config.tool_policy.sandbox)}
    model = _CONVERTER.unstructure(config.route, Route)
    if model is not None:
        defaults["model"] = model
        defaults["modelPolicy"] = {"allow": [literal(r) for r in _model_policy_refs(config)]}
    if config.selectable_models:
        defaults["models"] = {
            literal(ref): {"alias": literal(ref.partition("/")[2])}
            for ref in config.selectable_models
        }
    return defaults


def _route(route: Route) -> dict[str, Any] | None:
    primary, fallbacks = route.refs()
    if primary is None:
        return None
    return {"primary": literal(primary), "fallbacks": [literal(r) for r in fallbacks]}


def _document(config: TenantConfig) -> dict[str, Any]:
    return {
        "gateway": {
            "mode": "local",
            "bind": "loopback",
            "auth": {"mode": "token", "token": env_ref(config.gateway_token_env)},
        },
        "models": {
            "mode": "replace",
            "catalogRefresh": {"enabled": False},
            "providers": {p.id: _CONVERTER.unstructure(p, ProviderEntry) for p in config.providers},
        },
        "agents": {"defaults": _agent_defaults(config)},
        "tools": _CONVERTER.unstructure(config.tool_policy, ToolPolicy),
    }


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_unstructure_hook(Decimal, _number)
    converter.register_unstructure_hook(ModelCapabilities, _capabilities)
    converter.register_unstructure_hook(ModelEntry, _model)
    converter.register_unstructure_hook(ProviderEntry, _provider)
    converter.register_unstructure_hook(SandboxPolicy, _sandbox)
    converter.register_unstructure_hook(ToolPolicy, _tools)
    converter.register_unstructure_hook(Route, _route)
    converter.register_unstructure_hook(Secret, _refuse_secret)
    converter.register_unstructure_hook(TenantSecret, _refuse_secret)
    converter.register_unstructure_hook(TenantConfig, _document)
    return converter


_CONVERTER = _make_converter()


def render(config: TenantConfig) -> dict[str, Any]:
    """The OpenClaw document for a tenant, secrets excluded (they are only named)."""
    document: dict[str, Any] = _CONVERTER.unstructure(config, TenantConfig)
    return document


def to_json(document: dict[str, Any]) -> bytes:
    """The canonical bytes of a document: sorted keys, two-space indent, final newline."""
    text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def render_json(config: TenantConfig) -> bytes:
    return to_json(render(config))


def digest(config: TenantConfig) -> str:
    """SHA-256 of the canonical ``openclaw.json`` bytes: equal configs, equal digests."""
    return hashlib.sha256(render_json(config)).hexdigest()
