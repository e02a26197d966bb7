"""What a model can do, in the words a customer chooses a model by: which inputs it reads,
whether it reasons, how much it keeps in mind. The AI Provider tab shows these beside every
model and says what is assumed of a model the catalog does not list."""

from __future__ import annotations

from typing import Any

from domain.catalog import ByokProvider
from domain.model_capabilities import ModelCapabilities

_INPUT_WORDS = {"image": "images", "video": "video", "audio": "audio"}


def context_label(tokens: int) -> str:
    """A context window the way providers quote it: 200K, 1M."""
    if tokens >= 1_000_000:
        return f"{round(tokens / 1_000_000)}M context"
    return f"{max(1, round(tokens / 1000))}K context"


def inputs_label(capabilities: ModelCapabilities) -> str:
    """The inputs as words: text only, text and images, text, images and video."""
    words = ["text"] + [_INPUT_WORDS[m] for m in capabilities.input_modalities if m != "text"]
    if len(words) == 1:
        return "text only"
    return ", ".join(words[:-1]) + " and " + words[-1]


def capability_summary(capabilities: ModelCapabilities) -> str:
    """Inputs, reasoning when the model reasons, and the context window."""
    parts = [inputs_label(capabilities)]
    if capabilities.reasoning:
        parts.append("reasoning")
    parts.append(context_label(capabilities.context_window))
    return ", ".join(parts)


def model_label(name: str, capabilities: ModelCapabilities) -> str:
    return f"{name} — {capability_summary(capabilities)}"


def unlisted_model_note(provider: ByokProvider) -> str | None:
    """For a provider taking any model id: what the agent assumes of a model not listed."""
    assumed = provider.unlisted_model
    if assumed is None:
        return None
    parts = [inputs_label(assumed), "reasoning" if assumed.reasoning else "no reasoning"]
    parts.append(context_label(assumed.context_window))
    return (
        f"{provider.name} models not listed here are set up cautiously: {', '.join(parts)},"
        f" up to {assumed.max_tokens:,} tokens per answer."
    )


def model_options(provider: ByokProvider) -> list[dict[str, Any]]:
    """The provider's models for the model selector, each labelled with what it can do."""
    return [
        {"id": m.id, "name": m.name, "label": model_label(m.name, m.capabilities)}
        for m in provider.models
    ]
