"""The pages' words for people: one catalog from the API's error codes (and the field at
fault, and the provider in question) to sentences a customer can act on.

The JSON API keeps its stable codes and developer details; only the pages translate. Every
sentence that names a provider, a key shape or a limit reads it from the catalog.
"""

from __future__ import annotations

import re

from domain.byok import ProbeOutcome, ProbeResult
from domain.catalog import ByokProvider
from domain.errors import DomainError, ValidationError
from domain.use_cases.accounts import MIN_PASSWORD_LENGTH

GENERIC = "Something went wrong on our side. Nothing was changed; please try again in a minute."

CODE_WORDS: dict[str, str] = {
    "unauthorized": "That email and password do not match an account. Check both and try again.",
    "forbidden": "This form has expired. Reload the page and send it again.",
    "not_found": "We could not find that. It may have been removed already.",
    "conflict": "That cannot be done right now: something changed in the meantime. "
    "Reload the page and try again.",
    "too_many_attempts": "Too many attempts in a short time. Wait a minute, then try again.",
    "too_many_requests": "Too many attempts in a short time. Wait a minute, then try again.",
    "message_cap_reached": "Your agent has used all of today's messages.",
    "token_budget_exhausted": "Your agent has used all of this period's tokens.",
    "subscription_inactive": "Your plan is not active, so your agent is paused. "
    "Choose a plan to start it again.",
    "byok_key_invalid": "Your provider rejected your key and fallback to our models is off, "
    "so your agent is paused.",
    "key_store_unavailable": "We could not store your key just now. Nothing was changed; "
    "please try again in a minute.",
    "database_unavailable": GENERIC,
    "payment_provider_error": "Our payment provider did not answer. Nothing was charged; "
    "please try again in a few minutes.",
    "billing_not_configured": "Payments are not open on this site yet, so plans cannot be "
    "bought here. Please contact support.",
    "internal_error": GENERIC,
}

FIELD_WORDS: dict[str, str] = {
    "email": "Enter your email address, like name@example.com.",
    "password": f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.",
    "timezone": "Choose a time zone from the list, like Europe/Berlin.",
    "tier": "Choose one of the plans shown.",
    "provider": "Choose one of the providers in the list.",
}


def key_shape_words(provider: ByokProvider) -> str:
    """How a key of this provider looks and where one is made
    (``Groq keys start with gsk_ — create one at console.groq.com/keys``)."""
    words = f"{provider.name} keys start with {provider.key_prefix}"
    if provider.key_url:
        words += f" — create one at {display_url(provider.key_url)}"
    return words + "."


def display_url(url: str) -> str:
    """An address as people read it: no scheme, no trailing slash."""
    return re.sub(r"^https?://", "", url).rstrip("/")


def field_words(field: str, provider: ByokProvider | None, detail: str = "") -> str:
    """The sentence next to a field at fault."""
    if field == "api_key" and provider is not None:
        if "required" in detail or "empty" in detail:
            return f"Enter your {provider.name} API key. " + key_shape_words(provider)
        if "spaces" in detail:
            return "The key has a space or line break in it; paste it again as one piece."
        if "longer" in detail:
            return "That is longer than any provider's key; paste just the key."
        return key_shape_words(provider)
    if field == "model_preference":
        if provider is not None and provider.accepts_any_model:
            return f"Enter a model id as {provider.name} names it: vendor/model."
        if provider is not None:
            return f"Choose one of the {provider.name} models in the list."
        return "Choose one of the models in the list."
    if field == "email" and "already" in detail:
        return "Use another email address, or log in if this one is yours."
    return FIELD_WORDS.get(field, "Check this field and try again.")


def error_words(error: DomainError, provider: ByokProvider | None = None) -> str:
    """A domain error as people read it: the field's sentence, else the code's."""
    if isinstance(error, ValidationError) and error.field:
        return field_words(error.field, provider, error.detail)
    return CODE_WORDS.get(error.code, GENERIC)


_HTTP_STATUS = re.compile(r"HTTP (\d{3})")


def probe_words(provider: ByokProvider, outcome: ProbeOutcome) -> str:
    """What a key test found, in the provider's name, with the step to take next."""
    name = provider.name
    if outcome.result is ProbeResult.VALID:
        return f"Connection works ({outcome.latency_ms} ms): {name} accepted the key."
    if outcome.result is ProbeResult.INVALID_KEY:
        words = f"{name} rejected this key. Check that it was copied whole and is still active"
        if provider.key_url:
            words += f", or create a new one at {display_url(provider.key_url)}"
        return words + "."
    if outcome.result is ProbeResult.RATE_LIMITED:
        return f"{name} is limiting requests for this key right now. Try again in a minute."
    status = _HTTP_STATUS.search(outcome.detail)
    if status and status.group(1).startswith("5"):
        return (
            f"{name} had a problem on its side (error {status.group(1)}); your key may be fine. "
            "Try again in a few minutes."
        )
    if "did not answer" in outcome.detail:
        return f"{name} did not answer in time. Try again in a minute."
    return f"We could not reach {name} just now. Try again in a few minutes."


def probe_words_by_result(provider: ByokProvider) -> dict[str, str]:
    """The same sentences for the page's script, by result (and for an unreachable
    provider, ``server_error`` and ``timeout``); ``{ms}`` and ``{status}`` stand for what
    the script fills in from the API's answer."""
    words = {
        result.value: probe_words(provider, ProbeOutcome(result, "", 0)).replace("0 ms", "{ms} ms")
        for result in ProbeResult
    }
    server_error = ProbeOutcome(ProbeResult.UNREACHABLE, "HTTP 599", 0)
    words["server_error"] = probe_words(provider, server_error).replace("599", "{status}")
    timeout = ProbeOutcome(ProbeResult.UNREACHABLE, "did not answer", 0)
    words["timeout"] = probe_words(provider, timeout)
    return words


def script_error_words(provider: ByokProvider) -> dict[str, str]:
    """What the page's script shows when the API refuses a key test, by field or code
    (``""``: anything else)."""
    words = {code: CODE_WORDS[code] for code in ("too_many_attempts", "too_many_requests")}
    words["api_key"] = key_shape_words(provider)
    words["model_preference"] = field_words("model_preference", provider)
    words["provider"] = FIELD_WORDS["provider"]
    words[""] = (
        f"The test could not run just now. Try again in a minute. {key_shape_words(provider)}"
    )
    return words
