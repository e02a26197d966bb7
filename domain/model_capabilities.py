"""What a model can do: the inputs it reads, whether it reasons, how much it reads and writes.

The catalog holds these for every model, platform and BYOK alike, and the OpenClaw config
writes exactly what the catalog says: OpenClaw only passes an image to a model marked
image-capable and only offers thinking levels to a model marked as reasoning, so a model
written weaker than it is runs weaker. Values come from the providers' model pages (check
them against those pages, like the rates) and from the model catalog the pinned OpenClaw
ships.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from domain.errors import CatalogError
from domain.tool_policy import catalog_flag

INPUT_MODALITIES = ("text", "image", "video", "audio")
"""The input kinds OpenClaw 2026.9.6 accepts on a model entry, in its order."""


@attrs.frozen
class ModelCapabilities:
    """A model's inputs, reasoning, context window and most output tokens per answer."""

    input_modalities: tuple[str, ...]
    reasoning: bool
    context_window: int
    max_tokens: int


def build_capabilities(spec: Mapping[str, Any], where: str) -> ModelCapabilities:
    """Capabilities from plain catalog data: ``input`` (default text only), ``reasoning``
    (default false), ``context_window`` and ``max_tokens`` (required). Inputs are known
    OpenClaw kinds including text, without repeats; an answer fits in the context window."""
    raw_input = spec.get("input", ["text"])
    if not isinstance(raw_input, list) or not all(isinstance(m, str) for m in raw_input):
        raise CatalogError(f"{where}: input must be a list of strings, got {raw_input!r}")
    unknown = [m for m in raw_input if m not in INPUT_MODALITIES]
    if unknown:
        allowed = ", ".join(INPUT_MODALITIES)
        raise CatalogError(f"{where}: unknown input {unknown[0]!r}; expected some of {allowed}")
    if "text" not in raw_input or len(set(raw_input)) != len(raw_input):
        raise CatalogError(f"{where}: input must list text once and each kind at most once")
    context_window = _positive_int(spec, "context_window", where)
    max_tokens = _positive_int(spec, "max_tokens", where)
    if max_tokens > context_window:
        raise CatalogError(f"{where}: max_tokens must not exceed context_window")
    return ModelCapabilities(
        input_modalities=tuple(m for m in INPUT_MODALITIES if m in raw_input),
        reasoning=catalog_flag(spec, "reasoning", False, where),
        context_window=context_window,
        max_tokens=max_tokens,
    )


def _positive_int(spec: Mapping[str, Any], key: str, where: str) -> int:
    value = spec.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise CatalogError(f"{where}: {key} must be a positive integer, got {value!r}")
    return value
