"""BYOK input validation, masking, secrets and probe classification."""

from __future__ import annotations

import pickle

import pytest

from domain.byok import (
    CredentialInput,
    KeyStatus,
    ProbeResult,
    classify_probe_status,
    is_auth_failure,
    mask_key,
    status_after_probe,
    validate_api_key,
    validate_credential_input,
    validate_model,
)
from domain.catalog import Catalog
from domain.errors import ValidationError
from domain.secrets import REDACTED, Secret

KEY = "sk-ant-api03-secretsecretx9Qa"


def test_a_secret_never_shows_its_value() -> None:
    secret = Secret(KEY)
    assert KEY not in repr(secret)
    assert str(secret) == REDACTED
    assert f"{secret}" == REDACTED
    assert KEY not in repr([secret, {"k": secret}])
    assert secret.reveal() == KEY
    assert len(secret) == len(KEY)


def test_a_secret_refuses_to_be_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret(KEY))


def test_the_mask_is_prefix_ellipsis_and_last_four(catalog: Catalog) -> None:
    assert mask_key(catalog.byok_provider("anthropic"), Secret(KEY)) == "sk-ant-…x9Qa"
    assert mask_key(catalog.byok_provider("openai"), Secret("sk-abcdefgh1234")) == "sk-…1234"


def test_a_short_key_shows_no_tail(catalog: Catalog) -> None:
    openai = catalog.byok_provider("openai")
    assert mask_key(openai, Secret("sk-abcdefg")) == "sk-…"  # 7 after the prefix
    assert mask_key(openai, Secret("sk-abcdefgh")) == "sk-…efgh"  # 8 after: tail shown


@pytest.mark.parametrize(
    ("provider", "key"),
    [("openai", "sk-proj-abc123"), ("anthropic", KEY), ("groq", "gsk_abc123"),
     ("google", "AIzaSyABC123"), ("openrouter", "sk-or-v1-abc123")],
)  # fmt: skip
def test_well_shaped_keys_pass(catalog: Catalog, provider: str, key: str) -> None:
    validate_api_key(catalog.byok_provider(provider), Secret(key))


@pytest.mark.parametrize(
    ("key", "message"),
    [("", "must not be empty"), ("sk-abc def", "spaces"), ("sk-abc\n", "newlines"),
     ("sk-abc\x00", "control"), ("sk-abc\tx", "spaces"), ("sk-" + "a" * 510, "longer than 512"),
     ("pk-abc", "does not look like"), ("sk-", "does not look like")],
)  # fmt: skip
def test_bad_keys_are_field_errors_that_never_echo_the_key(
    catalog: Catalog, key: str, message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        validate_api_key(catalog.byok_provider("openai"), Secret(key))
    assert raised.value.field == "api_key"
    assert message in raised.value.detail
    if len(key) > 3:
        assert key.strip() not in raised.value.detail


def test_a_512_character_key_is_accepted(catalog: Catalog) -> None:
    validate_api_key(catalog.byok_provider("openai"), Secret("sk-" + "a" * 509))


def test_an_anthropic_key_needs_the_anthropic_prefix(catalog: Catalog) -> None:
    with pytest.raises(ValidationError) as raised:
        validate_api_key(catalog.byok_provider("anthropic"), Secret("sk-proj-abc"))
    assert "sk-ant-" in raised.value.detail


def test_models_must_be_listed_for_the_provider(catalog: Catalog) -> None:
    assert validate_model(catalog.byok_provider("openai"), " gpt-4.1 ") == "gpt-4.1"
    with pytest.raises(ValidationError) as raised:
        validate_model(catalog.byok_provider("openai"), "claude-sonnet-4-6")
    assert raised.value.field == "model_preference"
    assert "listed models" in raised.value.detail


def test_openrouter_accepts_any_vendor_model_id(catalog: Catalog) -> None:
    openrouter = catalog.byok_provider("openrouter")
    assert validate_model(openrouter, "mistralai/mistral-large") == "mistralai/mistral-large"
    for bad in ("mistral-large", "/x", "a/", "a/b c", "a/" + "b" * 200):
        with pytest.raises(ValidationError) as raised:
            validate_model(openrouter, bad)
        assert "vendor/model" in raised.value.detail


def test_a_vendor_model_id_may_use_every_allowed_character(catalog: Catalog) -> None:
    model = "abcdefghijklmnopqrstuvwxyz/0123456789-_.:"
    assert validate_model(catalog.byok_provider("openrouter"), model) == model


def test_the_key_may_be_omitted_only_when_the_same_provider_has_one_stored(
    catalog: Catalog,
) -> None:
    submitted = CredentialInput("openai", "gpt-4.1", None, None)
    with pytest.raises(ValidationError) as raised:
        validate_credential_input(catalog, submitted, None)
    assert raised.value.field == "api_key"
    assert "OpenAI" in raised.value.detail


def test_credential_input_normalises_the_provider(catalog: Catalog) -> None:
    valid = validate_credential_input(
        catalog, CredentialInput(" OpenAI ", "gpt-4o", Secret("sk-abc123"), False), None
    )
    assert (valid.provider.id, valid.model_preference, valid.allow_platform_fallback) == (
        "openai", "gpt-4o", False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("status", "result"),
    [(200, ProbeResult.VALID), (204, ProbeResult.VALID), (401, ProbeResult.INVALID_KEY),
     (403, ProbeResult.INVALID_KEY), (429, ProbeResult.RATE_LIMITED),
     (500, ProbeResult.UNREACHABLE), (503, ProbeResult.UNREACHABLE),
     (404, ProbeResult.UNREACHABLE), (None, ProbeResult.UNREACHABLE),
     (199, ProbeResult.UNREACHABLE), (300, ProbeResult.UNREACHABLE)],
)  # fmt: skip
def test_probe_status_codes_are_classified(status: int | None, result: ProbeResult) -> None:
    assert classify_probe_status(status) is result


@pytest.mark.parametrize(
    ("result", "current", "after"),
    [(ProbeResult.VALID, KeyStatus.INVALID, KeyStatus.VALID),
     (ProbeResult.INVALID_KEY, KeyStatus.VALID, KeyStatus.INVALID),
     (ProbeResult.RATE_LIMITED, KeyStatus.UNVERIFIED, KeyStatus.UNVERIFIED),
     (ProbeResult.UNREACHABLE, KeyStatus.VALID, KeyStatus.VALID)],
)  # fmt: skip
def test_only_conclusive_probes_change_the_key_status(
    result: ProbeResult, current: KeyStatus, after: KeyStatus
) -> None:
    assert status_after_probe(current, result) is after


def test_only_401_and_403_are_auth_failures() -> None:
    assert [c for c in (400, 401, 402, 403, 404, 429, 500) if is_auth_failure(c)] == [401, 403]
