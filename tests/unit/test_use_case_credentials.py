"""BYOK credential use cases: store, read, replace, test, fail, delete; config follows."""

from __future__ import annotations

import logging

import pytest

from domain.byok import CredentialInput, KeyStatus, ProbeOutcome, ProbeResult
from domain.errors import KeyStoreUnavailable, NotFound, ValidationError
from domain.ids import TenantId, UserId
from domain.secrets import Secret
from tests.unit.conftest import ANTHROPIC_KEY, OPENAI_KEY, World

T, U = TenantId("t-1"), UserId("u-t-1")


async def test_a_stored_key_is_encrypted_masked_and_unverified(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    stored = await world.credentials.get(T)
    assert stored.key_mask == "sk-…1234"
    assert stored.status is KeyStatus.UNVERIFIED
    assert stored.allow_platform_fallback is True
    assert OPENAI_KEY not in repr(stored) and OPENAI_KEY not in stored.ciphertext.token
    assert (await world.key_store.decrypt(stored.ciphertext)).reveal() == OPENAI_KEY


async def test_changing_only_the_model_keeps_the_key_and_its_status(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    await world.credentials.test(T)
    before = await world.credentials.get(T)
    world.clock.advance(minutes=5)
    after = await world.credentials.put(T, U, CredentialInput("openai", "gpt-4o", None, None))
    assert (after.ciphertext, after.status, after.created_at) == (
        before.ciphertext, KeyStatus.VALID, before.created_at,
    )  # fmt: skip
    assert after.model_preference == "gpt-4o" and after.updated_at > before.updated_at


async def test_switching_provider_requires_a_new_key(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    with pytest.raises(ValidationError) as raised:
        await world.credentials.put(
            T, U, CredentialInput("anthropic", "claude-sonnet-4-6", None, None)
        )
    assert raised.value.field == "api_key"


async def test_the_fallback_opt_out_is_kept_unless_changed(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key(allow_platform_fallback=False)
    kept = await world.credentials.put(T, U, CredentialInput("openai", "gpt-4o", None, None))
    assert kept.allow_platform_fallback is False


async def test_a_byok_tenants_config_follows_its_key(world: World) -> None:
    await world.add_tenant(tier="byok")
    assert T not in world.writer.written
    await world.add_key()
    assert world.writer.written[T].route.refs()[0] == "byok-openai/gpt-4.1"
    await world.credentials.delete(T)
    assert world.writer.written[T].route.refs()[0] == "moonshot/kimi-k2.5"


async def test_a_key_stored_on_another_tier_does_not_touch_the_config(world: World) -> None:
    await world.add_tenant(tier="starter")
    await world.add_key()
    assert world.writer.writes == 0
    assert (await world.credentials.get(T)).provider == "openai"


async def test_reading_or_deleting_a_missing_credential_is_not_found(world: World) -> None:
    await world.add_tenant(tier="byok")
    with pytest.raises(NotFound):
        await world.credentials.get(T)
    with pytest.raises(NotFound):
        await world.credentials.delete(T)


async def test_testing_the_stored_key_records_the_result(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    world.probe.outcome = ProbeOutcome(ProbeResult.INVALID_KEY, "401 from provider", 30)
    outcome = await world.credentials.test(T)
    assert outcome.result is ProbeResult.INVALID_KEY
    stored = await world.credentials.get(T)
    assert (stored.status, stored.last_error) == (KeyStatus.INVALID, "401 from provider")
    assert stored.last_verified_at == world.clock.now()
    assert world.probe.calls == [("openai", OPENAI_KEY)]
    assert world.writer.written[T].route.refs()[0] == "moonshot/kimi-k2.5"
    world.probe.outcome = ProbeOutcome(ProbeResult.VALID, "ok", 20)
    await world.credentials.test(T)
    stored = await world.credentials.get(T)
    assert (stored.status, stored.last_error) == (KeyStatus.VALID, None)


async def test_a_rate_limited_probe_leaves_the_status_alone(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    world.probe.outcome = ProbeOutcome(ProbeResult.RATE_LIMITED, "429", 5)
    await world.credentials.test(T)
    stored = await world.credentials.get(T)
    assert stored.status is KeyStatus.UNVERIFIED and stored.last_verified_at is None


async def test_a_key_can_be_tested_before_it_is_saved(world: World) -> None:
    await world.add_tenant(tier="byok")
    outcome = await world.credentials.test(T, "anthropic", Secret(ANTHROPIC_KEY), "claude-opus-4-6")
    assert outcome.result is ProbeResult.VALID
    assert world.probe.calls == [("anthropic", ANTHROPIC_KEY)]
    assert await world.credential_repo.get(T) is None


async def test_testing_a_new_key_validates_its_inputs(world: World) -> None:
    await world.add_tenant(tier="byok")
    with pytest.raises(ValidationError) as raised:
        await world.credentials.test(T, None, Secret(OPENAI_KEY))
    assert raised.value.field == "provider"
    with pytest.raises(ValidationError) as raised:
        await world.credentials.test(T, "openai", Secret("nope"))
    assert raised.value.field == "api_key"
    with pytest.raises(ValidationError) as raised:
        await world.credentials.test(T, "openai", Secret(OPENAI_KEY), "claude")
    assert raised.value.field == "model_preference"
    assert world.probe.calls == []


async def test_a_gateway_auth_failure_invalidates_regenerates_and_notifies(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    assert await world.credentials.report_key_failure(T, "openai", 401) is KeyStatus.INVALID
    stored = await world.credentials.get(T)
    assert stored.status is KeyStatus.INVALID and "401" in (stored.last_error or "")
    assert world.writer.written[T].route.refs() == ("moonshot/kimi-k2.5", ("minimax/MiniMax-M2.1",))
    assert await world.written() == [("key_invalidated", "openai")]
    assert await world.credentials.report_key_failure(T, "openai", 403) is KeyStatus.INVALID
    assert await world.written() == [("key_invalidated", "openai")]


async def test_a_non_auth_provider_error_changes_nothing(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    assert await world.credentials.report_key_failure(T, "openai", 500) is KeyStatus.UNVERIFIED
    assert await world.written() == []


async def test_a_failure_for_a_provider_without_a_key_is_not_found(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    with pytest.raises(NotFound):
        await world.credentials.report_key_failure(T, "groq", 401)
    with pytest.raises(NotFound) as raised:
        await world.credentials.report_key_failure(TenantId("ghost"), "openai", 401)
    assert raised.value.code == "tenant_unknown"


async def test_a_key_store_outage_loses_nothing(world: World) -> None:
    await world.add_tenant(tier="byok")
    world.key_store.available = False
    with pytest.raises(KeyStoreUnavailable):
        await world.add_key()
    assert await world.credential_repo.get(T) is None


async def test_the_key_never_reaches_the_logs(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await world.add_tenant(tier="byok")
    await world.add_key()
    await world.credentials.test(T)
    await world.credentials.report_key_failure(T, "openai", 401)
    assert OPENAI_KEY not in caplog.text


async def test_changing_only_the_model_keeps_the_last_verification_and_error(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    world.probe.outcome = ProbeOutcome(ProbeResult.INVALID_KEY, "401 from provider", 30)
    await world.credentials.test(T)
    verified_at = world.clock.now()
    world.clock.advance(minutes=5)
    after = await world.credentials.put(T, U, CredentialInput("openai", "gpt-4o", None, None))
    assert (after.last_verified_at, after.last_error) == (verified_at, "401 from provider")
    assert await world.credentials.get(T) == after


async def test_testing_a_new_key_without_a_provider_says_so(world: World) -> None:
    await world.add_tenant(tier="byok")
    with pytest.raises(ValidationError) as raised:
        await world.credentials.test(T, None, Secret(OPENAI_KEY))
    assert raised.value.detail == "provider is required to test a new key"


async def test_the_stored_key_may_be_tested_naming_its_provider_in_any_case(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    outcome = await world.credentials.test(T, " OpenAI ")
    assert outcome.result is ProbeResult.VALID
    assert world.probe.calls == [("openai", OPENAI_KEY)]


async def test_testing_another_provider_without_a_key_says_a_key_is_needed(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    with pytest.raises(ValidationError) as raised:
        await world.credentials.test(T, "groq")
    assert raised.value.field == "api_key"
    assert raised.value.detail == "api_key is required to test a provider other than the stored one"
    assert world.probe.calls == []


async def test_testing_the_stored_key_stamps_the_credential_with_the_time(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    world.clock.advance(hours=1)
    await world.credentials.test(T)
    stored = await world.credentials.get(T)
    assert stored.updated_at == stored.last_verified_at == world.clock.now()


async def test_a_gateway_auth_failure_is_recorded_with_its_status_and_time(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    world.clock.advance(hours=1)
    await world.credentials.report_key_failure(T, "openai", 403)
    stored = await world.credentials.get(T)
    assert (stored.status, stored.last_error, stored.updated_at) == (
        KeyStatus.INVALID, "provider answered 403 to the gateway", world.clock.now(),
    )  # fmt: skip


async def test_a_key_failure_that_matches_no_stored_key_names_what_is_missing(
    world: World,
) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    with pytest.raises(NotFound) as raised:
        await world.credentials.report_key_failure(T, "groq", 401)
    assert (raised.value.code, raised.value.detail) == (
        "not_found",
        "tenant has no stored 'groq' key",
    )
    with pytest.raises(NotFound) as raised:
        await world.credentials.report_key_failure(TenantId("ghost"), "openai", 401)
    assert (raised.value.code, raised.value.detail) == (
        "tenant_unknown",
        "tenant 'ghost' is unknown",
    )
