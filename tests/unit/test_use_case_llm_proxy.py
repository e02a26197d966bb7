"""The LLM proxy use case (spec §13) on in-memory ports and a scripted upstream: the virtual
key names the tenant, the call is admitted and forwarded with the right key along the route,
the answer passes through (scrubbed, or translated for a fallback in the other format) and
the usage the provider reported is settled."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from domain.byok import KeyStatus
from domain.errors import KeyStoreUnavailable, UpstreamUnreachable
from domain.ids import MessageId, TenantId
from domain.metering import Credential, RefusalReason, Refused, TokenUsage
from domain.proxy import UpstreamRequest, UpstreamResponse, WireFormat
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus
from domain.use_cases.llm_proxy import (
    UNKNOWN_KEY,
    ListedModel,
    LlmProxy,
    ProxyAnswer,
    ProxyCall,
    ProxyRefusal,
    RefusalKind,
    UpstreamAttempt,
    _report_failure,
    refusal_for,
)
from domain.use_cases.metering import Metering
from domain.use_cases.virtual_keys import VirtualKeys
from tests.fakes import (
    FakeKeyStore,
    InMemoryCredentialRepository,
    InMemoryUsageLedger,
    InMemoryVirtualKeyRepository,
)
from tests.unit.conftest import OPENAI_KEY, World

T = TenantId("t-1")
MOONSHOT = "https://api.moonshot.ai/v1/chat/completions"
MINIMAX = "https://api.minimax.io/anthropic/v1/messages"
ANTHROPIC = "https://api.anthropic.com/v1/messages"
OPENAI = "https://api.openai.com/v1/chat/completions"
PLATFORM_KEYS = {
    "moonshot": Secret("moon-platform-key"),
    "minimax": Secret("mini-platform-key"),
    "anthropic": Secret("anth-platform-key"),
}
HELLO = [{"role": "user", "content": "hello"}]


def openai_answer(prompt: int = 30, completion: int = 7, text: str = "hi") -> bytes:
    return json.dumps({
        "id": "c1", "object": "chat.completion", "model": "x",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
    }).encode()  # fmt: skip


def anthropic_answer(inputs: int = 20, outputs: int = 5, text: str = "hey") -> bytes:
    return json.dumps({
        "id": "m1", "type": "message", "role": "assistant", "model": "x",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "usage": {"input_tokens": inputs, "output_tokens": outputs},
    }).encode()  # fmt: skip


@attrs.define
class Reply:
    status: int = 200
    body: tuple[bytes, ...] = (b"{}",)
    content_type: str = "application/json"
    unreachable: bool = False


@attrs.define
class ScriptedUpstream:
    """Answers each URL with its scripted replies in turn; records every request and close."""

    replies: dict[str, list[Reply]] = attrs.Factory(dict)
    requests: list[UpstreamRequest] = attrs.Factory(list)
    closed: list[str] = attrs.Factory(list)

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        self.requests.append(request)
        reply = self.replies[request.url].pop(0)
        if reply.unreachable:
            raise UpstreamUnreachable(request.url)

        async def chunks() -> AsyncIterator[bytes]:
            for chunk in reply.body:
                yield chunk

        async def close() -> None:
            self.closed.append(request.url)

        return UpstreamResponse(reply.status, reply.content_type, chunks(), close)

    def urls(self) -> list[str]:
        return [r.url for r in self.requests]

    def headers(self, index: int = 0) -> dict[str, str]:
        return dict(self.requests[index].headers)

    def body(self, index: int = 0) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.requests[index].body)
        return parsed


@attrs.define
class Proxy:
    world: World
    upstream: ScriptedUpstream
    proxy: LlmProxy
    key: str


async def make_proxy(
    world: World,
    replies: dict[str, list[Reply]] | None = None,
    tier: str = "starter",
    platform_keys: dict[str, Secret] | None = None,
    **tenant: Any,
) -> Proxy:
    await world.add_tenant(tier=tier, **tenant)
    virtual_keys = VirtualKeys(InMemoryVirtualKeyRepository(), FakeKeyStore(), world.clock)
    key = await virtual_keys.current(T)
    upstream = ScriptedUpstream(replies or {})
    proxy = LlmProxy(
        catalog=world.catalog, virtual_keys=virtual_keys, metering=world.metering,
        credentials=world.credentials, stored_credentials=world.credential_repo,
        tenants=world.tenant_repo, key_store=world.key_store, upstream=upstream,
        platform_keys=PLATFORM_KEYS if platform_keys is None else platform_keys,
    )  # fmt: skip
    return Proxy(world, upstream, proxy, key.reveal())


def openai_call(
    model: str = "kimi-k2.5",
    stream: bool = False,
    max_tokens: int | None = 1_000,
    message_id: str | None = None,
    **extra: Any,
) -> ProxyCall:
    body = {"model": model, "messages": HELLO, **extra}
    if stream:
        body["stream"] = True
    mid = MessageId(message_id) if message_id else None
    return ProxyCall(WireFormat.OPENAI, body, model, stream, max_tokens, mid)


def anthropic_call(
    model: str = "MiniMax-M2.1",
    headers: tuple[tuple[str, str], ...] = (),
    stream: bool = False,
    **extra: Any,
) -> ProxyCall:
    body = {"model": model, "messages": HELLO, "max_tokens": 800, **extra}
    return ProxyCall(WireFormat.ANTHROPIC, body, model, stream, 800, None, headers)


async def used(world: World) -> tuple[int, int, int]:
    """(messages used, tokens reserved, tokens used) of the tenant's period."""
    usage = await world.metering.usage(T)
    return usage.messages_used, usage.tokens_reserved, usage.tokens_used


def answer(result: ProxyAnswer | ProxyRefusal) -> ProxyAnswer:
    assert isinstance(result, ProxyAnswer), result
    return result


def refusal(result: ProxyAnswer | ProxyRefusal) -> ProxyRefusal:
    assert isinstance(result, ProxyRefusal), result
    return result


async def read(result: ProxyAnswer | ProxyRefusal) -> bytes:
    streamed = answer(result).chunks
    assert streamed is not None
    return b"".join([chunk async for chunk in streamed])


async def test_an_unknown_virtual_key_is_refused_as_an_invalid_api_key(world: World) -> None:
    p = await make_proxy(world)
    result = await p.proxy.call("tk-not-a-key", openai_call())
    assert result == ProxyRefusal(401, RefusalKind.AUTHENTICATION, "invalid_api_key",
                                  "invalid API key")  # fmt: skip
    assert result is UNKNOWN_KEY
    assert await p.proxy.models("tk-not-a-key") is UNKNOWN_KEY
    assert p.upstream.requests == []


async def test_a_virtual_key_whose_tenant_is_gone_lists_no_models(world: World) -> None:
    p = await make_proxy(world)
    del world.tenant_repo.tenants[T]
    assert await p.proxy.models(p.key) is UNKNOWN_KEY


async def test_a_whole_answer_is_forwarded_with_the_platform_key_and_its_usage_settled(
    world: World,
) -> None:
    p = await make_proxy(world, {MOONSHOT: [Reply(200, (openai_answer(30, 7),))]})
    result = answer(await p.proxy.call(p.key, openai_call(temperature=0.2)))
    assert (result.status_code, result.content_type) == (200, "application/json")
    assert result.body == openai_answer(30, 7)
    assert result.attempts == (UpstreamAttempt("moonshot", 200),)
    headers = p.upstream.headers()
    assert headers["authorization"] == "Bearer moon-platform-key"
    assert headers["content-type"] == "application/json"
    assert "x-api-key" not in headers
    body = p.upstream.body()
    assert body == {"model": "kimi-k2.5", "messages": HELLO, "temperature": 0.2}
    assert p.upstream.closed == [MOONSHOT]
    await p.proxy.drain()
    assert await used(world) == (0, 0, 37)


async def test_a_call_naming_its_admitted_message_settles_before_the_answer_returns(
    world: World,
) -> None:
    p = await make_proxy(world, {MOONSHOT: [Reply(200, (openai_answer(30, 7),))]})
    await world.metering.admit(T, MessageId("m-1"), max_tokens=2_000)
    answer(await p.proxy.call(p.key, openai_call(message_id="m-1")))
    assert await used(world) == (1, 0, 37)  # no drain: settled on the caller's path


async def test_a_second_call_of_a_settled_message_counts_its_tokens_under_an_id_of_its_own(
    world: World,
) -> None:
    replies = [Reply(200, (openai_answer(30, 7),)), Reply(200, (openai_answer(10, 3),))]
    p = await make_proxy(world, {MOONSHOT: replies})
    await world.metering.admit(T, MessageId("m-1"), max_tokens=2_000)
    answer(await p.proxy.call(p.key, openai_call(message_id="m-1")))
    answer(await p.proxy.call(p.key, openai_call(message_id="m-1")))
    await p.proxy.drain()
    assert await used(world) == (1, 0, 50)


async def test_a_replayed_settlement_of_an_anonymous_call_adds_nothing(world: World) -> None:
    p = await make_proxy(world, {MOONSHOT: [Reply(200, (openai_answer(30, 7),))]})
    answer(await p.proxy.call(p.key, openai_call()))
    await p.proxy.drain()
    assert await used(world) == (0, 0, 37)


async def test_an_answer_without_usage_settles_nothing_and_releases_the_reservation(
    world: World,
) -> None:
    p = await make_proxy(world, {MOONSHOT: [Reply(200, (b'{"choices": []}',))]})
    answer(await p.proxy.call(p.key, openai_call()))
    await p.proxy.drain()
    assert await used(world) == (0, 0, 0)


async def test_a_provider_error_answer_reaches_the_caller_scrubbed_of_the_key(
    world: World,
) -> None:
    echoed = b'{"error": "bad request for key moon-platform-key"}'
    p = await make_proxy(world, {MOONSHOT: [Reply(400, (echoed,))]})
    result = answer(await p.proxy.call(p.key, openai_call()))
    assert result.status_code == 400
    assert result.body == b'{"error": "bad request for key [redacted]"}'
    assert result.attempts == (UpstreamAttempt("moonshot", 400),)
    await p.proxy.drain()
    assert await used(world) == (0, 0, 0)


async def test_an_error_answer_that_does_not_echo_the_key_passes_unchanged(
    world: World,
) -> None:
    body = b'{"error": {"message": "context too long", "usage": {"prompt_tokens": 9}}}'
    p = await make_proxy(world, {MOONSHOT: [Reply(400, (body,), "application/problem+json")]})
    result = answer(await p.proxy.call(p.key, openai_call()))
    assert (result.body, result.content_type) == (body, "application/problem+json")
    await p.proxy.drain()
    assert await used(world) == (0, 0, 0)  # an error's usage is never charged


async def test_a_model_the_tenant_may_not_use_is_refused_before_anything_is_reserved(
    world: World,
) -> None:
    p = await make_proxy(world)
    result = refusal(await p.proxy.call(p.key, openai_call("gpt-5")))
    assert result == ProxyRefusal(
        404, RefusalKind.NOT_FOUND, "model_not_found",
        "the model 'gpt-5' is not one this tenant may use in this format",
    )  # fmt: skip
    assert await used(world) == (0, 0, 0)
    assert p.upstream.requests == []


async def test_an_inactive_subscription_is_refused_without_calling_the_provider(
    world: World,
) -> None:
    p = await make_proxy(world, status=SubscriptionStatus.CANCELED)
    result = refusal(await p.proxy.call(p.key, openai_call()))
    assert (result.status_code, result.kind, result.code) == (
        403, RefusalKind.PERMISSION, "subscription_inactive"
    )  # fmt: skip
    assert p.upstream.requests == []


@pytest.mark.parametrize(
    ("reason", "status", "kind", "message"),
    [
        (RefusalReason.MESSAGE_CAP_REACHED, 429, RefusalKind.RATE_LIMIT,
         "the daily message cap is reached"),
        (RefusalReason.TOKEN_BUDGET_EXHAUSTED, 429, RefusalKind.RATE_LIMIT,
         "the token budget for the period is spent"),
        (RefusalReason.BYOK_KEY_INVALID, 429, RefusalKind.RATE_LIMIT,
         "the tenant's own key is invalid and platform fallback is disabled"),
        (RefusalReason.SUBSCRIPTION_INACTIVE, 403, RefusalKind.PERMISSION,
         "the subscription is not active"),
        (RefusalReason.TENANT_UNKNOWN, 401, RefusalKind.AUTHENTICATION,
         "the virtual key's tenant is unknown"),
    ],
)  # fmt: skip
def test_a_metering_refusal_is_answered_like_a_providers_error(
    reason: RefusalReason, status: int, kind: RefusalKind, message: str
) -> None:
    assert refusal_for(Refused(reason, None)) == ProxyRefusal(status, kind, reason.value,
                                                              message)  # fmt: skip


def test_a_refusal_that_resets_says_when() -> None:
    at = datetime(2026, 12, 3, 0, 0, tzinfo=UTC)
    refused = refusal_for(Refused(RefusalReason.MESSAGE_CAP_REACHED, at))
    assert refused.message == (
        "the daily message cap is reached; it resets at 2026-12-03T00:00:00+00:00"
    )


async def test_a_rate_limited_primary_falls_back_to_the_routes_next_model_translated(
    world: World,
) -> None:
    """Starter: Kimi (OpenAI format) first, then MiniMax (Anthropic format)."""
    replies = {MOONSHOT: [Reply(429, (b"slow down",))],
               MINIMAX: [Reply(200, (anthropic_answer(20, 5, "from minimax"),))]}  # fmt: skip
    p = await make_proxy(world, replies)
    result = answer(await p.proxy.call(p.key, openai_call()))
    assert result.attempts == (UpstreamAttempt("moonshot", 429), UpstreamAttempt("minimax", 200))
    assert (result.status_code, result.content_type) == (200, "application/json")
    translated = json.loads(result.body)
    assert translated["model"] == "MiniMax-M2.1"
    assert translated["choices"][0]["message"]["content"] == "from minimax"
    assert p.upstream.urls() == [MOONSHOT, MINIMAX]
    assert p.upstream.closed == [MOONSHOT, MINIMAX]
    headers = p.upstream.headers(1)
    assert headers["x-api-key"] == "mini-platform-key"
    assert headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    sent = p.upstream.body(1)
    assert (sent["model"], sent["max_tokens"]) == ("MiniMax-M2.1", 1_000)
    await p.proxy.drain()
    assert await used(world) == (0, 0, 25)


async def test_a_call_without_max_tokens_reserves_the_catalog_default_for_a_fallback(
    world: World,
) -> None:
    replies = {MOONSHOT: [Reply(503)], MINIMAX: [Reply(200, (anthropic_answer(),))]}
    p = await make_proxy(world, replies)
    answer(await p.proxy.call(p.key, openai_call(max_tokens=None)))
    assert p.upstream.body(1)["max_tokens"] == world.catalog.reservation_tokens_default


async def test_a_call_that_is_not_plain_text_never_falls_back_across_formats(
    world: World,
) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    p = await make_proxy(world, {MOONSHOT: [Reply(429)]})
    result = refusal(await p.proxy.call(p.key, openai_call(tools=tools)))
    assert p.upstream.urls() == [MOONSHOT]
    assert result.attempts == (UpstreamAttempt("moonshot", 429),)


async def test_a_fallbacks_refusal_is_the_proxys_own_error_never_its_body(
    world: World,
) -> None:
    replies = {MOONSHOT: [Reply(500)], MINIMAX: [Reply(400, (b'{"type": "error"}',))]}
    p = await make_proxy(world, replies)
    result = refusal(await p.proxy.call(p.key, openai_call()))
    assert result == ProxyRefusal(
        400, RefusalKind.INVALID_REQUEST, "upstream_refused",
        "the fallback model 'MiniMax-M2.1' could not answer this call",
        (UpstreamAttempt("moonshot", 500), UpstreamAttempt("minimax", 400)),
    )  # fmt: skip


async def test_a_fallbacks_answer_without_text_is_an_upstream_error(world: World) -> None:
    replies = {MOONSHOT: [Reply(500)], MINIMAX: [Reply(200, (b'{"content": []}',))]}
    p = await make_proxy(world, replies)
    result = refusal(await p.proxy.call(p.key, openai_call()))
    assert result == ProxyRefusal(
        502, RefusalKind.UPSTREAM, "upstream_refused",
        "the fallback model 'MiniMax-M2.1' could not answer this call",
        (UpstreamAttempt("moonshot", 500), UpstreamAttempt("minimax", 200)),
    )  # fmt: skip


async def test_every_upstream_rate_limited_answers_429_and_releases_the_reservation(
    world: World,
) -> None:
    p = await make_proxy(world, {MOONSHOT: [Reply(500)], MINIMAX: [Reply(429)]})
    result = refusal(await p.proxy.call(p.key, openai_call()))
    assert result == ProxyRefusal(
        429, RefusalKind.RATE_LIMIT, "upstream_rate_limited",
        "every model this tenant may use is rate limited; try again shortly",
        (UpstreamAttempt("moonshot", 500), UpstreamAttempt("minimax", 429)),
    )  # fmt: skip
    assert await used(world) == (0, 0, 0)


async def test_every_upstream_failing_or_unreachable_answers_502(world: World) -> None:
    replies = {MOONSHOT: [Reply(429)], MINIMAX: [Reply(unreachable=True)]}
    p = await make_proxy(world, replies)
    result = refusal(await p.proxy.call(p.key, openai_call()))
    assert result == ProxyRefusal(
        502, RefusalKind.UPSTREAM, "upstream_unavailable",
        "no model this tenant may use answered; try again shortly",
        (UpstreamAttempt("moonshot", 429), UpstreamAttempt("minimax", None)),
    )  # fmt: skip
    assert await used(world) == (0, 0, 0)


async def test_an_upstream_without_a_configured_platform_key_is_skipped(world: World) -> None:
    p = await make_proxy(world, {MINIMAX: [Reply(200, (anthropic_answer(),))]},
                         platform_keys={"minimax": Secret("mini-platform-key")})  # fmt: skip
    result = answer(await p.proxy.call(p.key, openai_call()))
    assert result.attempts == (UpstreamAttempt("minimax", 200),)


async def test_no_platform_key_at_all_answers_502_with_no_attempt(world: World) -> None:
    p = await make_proxy(world, platform_keys={})
    result = refusal(await p.proxy.call(p.key, openai_call()))
    assert (result.status_code, result.attempts) == (502, ())
    assert await used(world) == (0, 0, 0)


async def test_an_anthropic_call_keeps_its_own_version_and_beta_headers(world: World) -> None:
    p = await make_proxy(world, {MINIMAX: [Reply(200, (anthropic_answer(),))]})
    headers = (("anthropic-version", "2024-01-01"), ("anthropic-beta", "tools-1"),
               ("x-api-key", "the-callers-virtual-key"))  # fmt: skip
    result = answer(await p.proxy.call(p.key, anthropic_call(headers=headers)))
    assert result.body == anthropic_answer()
    sent = p.upstream.requests[0].headers
    assert ("x-api-key", "mini-platform-key") in sent
    assert ("anthropic-version", "2024-01-01") in sent
    assert ("anthropic-beta", "tools-1") in sent
    assert [name for name, _ in sent].count("x-api-key") == 1
    assert p.upstream.body()["model"] == "MiniMax-M2.1"


async def test_a_tenants_own_key_is_decrypted_for_its_call_and_sent_as_a_bearer_token(
    world: World,
) -> None:
    p = await make_proxy(world, {OPENAI: [Reply(200, (openai_answer(),))]}, tier="byok")
    await world.add_key()
    result = answer(await p.proxy.call(p.key, openai_call("gpt-4.1")))
    assert result.attempts == (UpstreamAttempt("openai", 200),)
    assert p.upstream.headers()["authorization"] == f"Bearer {OPENAI_KEY}"


async def test_a_rejected_tenant_key_is_marked_invalid_and_the_platform_fallback_answers(
    world: World,
) -> None:
    replies = {OPENAI: [Reply(401, (b"bad key",))],
               MOONSHOT: [Reply(200, (openai_answer(),))]}  # fmt: skip
    p = await make_proxy(world, replies, tier="byok")
    await world.add_key(allow_platform_fallback=True)
    result = answer(await p.proxy.call(p.key, openai_call("gpt-4.1")))
    assert result.attempts == (UpstreamAttempt("openai", 401), UpstreamAttempt("moonshot", 200))
    stored = await world.credential_repo.get(T)
    assert stored is not None and stored.status is KeyStatus.INVALID
    assert p.upstream.closed[0] == OPENAI


async def test_a_tenant_key_that_is_not_usable_is_never_sent(world: World) -> None:
    p = await make_proxy(world, {MOONSHOT: [Reply(200, (openai_answer(),))]}, tier="byok")
    await world.add_key(allow_platform_fallback=True)
    stored = await world.credential_repo.get(T)
    assert stored is not None
    await world.credential_repo.put(attrs.evolve(stored, status=KeyStatus.INVALID))
    result = await p.proxy.call(p.key, openai_call("kimi-k2.5"))
    assert [r.url for r in p.upstream.requests] == [MOONSHOT]
    assert answer(result).attempts == (UpstreamAttempt("moonshot", 200),)


async def test_an_invalid_own_key_without_platform_fallback_is_refused_as_such(
    world: World,
) -> None:
    p = await make_proxy(world, tier="byok")
    await world.add_key(allow_platform_fallback=False)
    stored = await world.credential_repo.get(T)
    assert stored is not None
    await world.credential_repo.put(attrs.evolve(stored, status=KeyStatus.INVALID))
    result = refusal(await p.proxy.call(p.key, openai_call("kimi-k2.5")))
    assert (result.status_code, result.kind, result.code) == (
        429, RefusalKind.RATE_LIMIT, "byok_key_invalid"
    )  # fmt: skip
    assert p.upstream.requests == []


async def test_a_platform_model_beyond_a_byok_tenants_fallback_budget_is_refused_unheld(
    world: World,
) -> None:
    """The fallback budget cannot hold the call, so the platform models leave the plan and
    nothing is left to serve a call naming one: refused, and its hold released."""
    p = await make_proxy(world, tier="byok")
    await world.add_key(allow_platform_fallback=True)
    await world.metering.settle(T, MessageId("spent"), "moonshot/kimi-k2.5",
                                TokenUsage(600_400, 0), Credential.PLATFORM)  # fmt: skip
    result = refusal(await p.proxy.call(p.key, openai_call("kimi-k2.5")))
    assert result == ProxyRefusal(429, RefusalKind.RATE_LIMIT, "token_budget_exhausted",
                                  "the token budget for the period is spent")  # fmt: skip
    assert p.upstream.requests == []
    assert (await used(world))[:2] == (0, 0)
    assert [r[1:] for r in records(world) if is_call_id(r[0])] == [
        ("kimi-k2.5", Credential.PLATFORM, 0, 0, 0)
    ]


async def test_a_stream_passes_through_and_settles_the_usage_it_reported(world: World) -> None:
    events = (b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n',
              b'data: {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 4}}\n\n',
              b"data: [DONE]\n\n")  # fmt: skip
    p = await make_proxy(world, {MOONSHOT: [Reply(200, events, "text/event-stream")]})
    options: dict[str, Any] = {"stream_options": {"other": 1}}
    result = await p.proxy.call(p.key, openai_call(stream=True, **options))
    streamed = answer(result)
    assert (streamed.status_code, streamed.content_type) == (200, "text/event-stream")
    assert answer(result).attempts == (UpstreamAttempt("moonshot", 200),)
    assert await read(result) == b"".join(events)
    assert p.upstream.body()["stream_options"] == {"other": 1, "include_usage": True}
    await p.proxy.drain()
    assert p.upstream.closed == [MOONSHOT]
    assert await used(world) == (0, 0, 16)


async def test_an_openai_stream_asks_the_provider_for_its_usage(world: World) -> None:
    p = await make_proxy(world, {MOONSHOT: [Reply(200, (b"data: [DONE]\n\n",))]})
    await read(await p.proxy.call(p.key, openai_call(stream=True, stream_options="odd")))
    assert p.upstream.body()["stream_options"] == {"include_usage": True}


async def test_a_stream_that_reports_no_usage_is_charged_its_whole_reservation(
    world: World,
) -> None:
    p = await make_proxy(world, {MOONSHOT: [Reply(200, (b"data: [DONE]\n\n",))]})
    await read(await p.proxy.call(p.key, openai_call(stream=True, max_tokens=900)))
    await p.proxy.drain()
    assert await used(world) == (0, 0, 900)


async def test_a_stream_for_a_named_message_settles_before_the_stream_ends(world: World) -> None:
    events = (b'data: {"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}\n',)
    p = await make_proxy(world, {MOONSHOT: [Reply(200, events)]})
    await world.metering.admit(T, MessageId("m-1"), max_tokens=2_000)
    await read(await p.proxy.call(p.key, openai_call(stream=True, message_id="m-1")))
    assert await used(world) == (1, 0, 3)


async def test_a_stream_the_caller_leaves_still_settles(world: World) -> None:
    events = (b'data: {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}\n',
              b"data: more\n")  # fmt: skip
    p = await make_proxy(world, {MOONSHOT: [Reply(200, events)]})
    streamed = answer(await p.proxy.call(p.key, openai_call(stream=True))).chunks
    assert streamed is not None
    assert isinstance(streamed, AsyncGenerator)
    assert await anext(streamed) == events[0]
    await streamed.aclose()
    await p.proxy.drain()
    assert p.upstream.closed == [MOONSHOT]
    assert await used(world) == (0, 0, 7)
    assert [r[1:3] for r in records(world)] == [("moonshot/kimi-k2.5", Credential.PLATFORM)]


async def test_a_failed_stream_from_the_provider_is_not_passed_through_as_a_stream(
    world: World,
) -> None:
    p = await make_proxy(world, {MOONSHOT: [Reply(400, (b'{"error": "x"}',))]})
    result = answer(await p.proxy.call(p.key, openai_call(stream=True)))
    assert (result.chunks, result.body) == (None, b'{"error": "x"}')


async def test_a_streamed_fallback_in_the_other_format_is_translated_as_it_passes(
    world: World,
) -> None:
    events = (
        b'event: message_start\ndata: {"type": "message_start", "message": {"id": "m",'
        b' "usage": {"input_tokens": 9, "output_tokens": 0}}}\n\n',
        b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0,'
        b' "delta": {"type": "text_delta", "text": "yo"}}\n\n',
        b'event: message_delta\ndata: {"type": "message_delta", "delta": {"stop_reason":'
        b' "end_turn"}, "usage": {"output_tokens": 3}}\n\n',
        b'event: message_stop\ndata: {"type": "message_stop"}\n\n',
    )
    replies = {MOONSHOT: [Reply(429)], MINIMAX: [Reply(200, events, "text/event-stream")]}
    p = await make_proxy(world, replies)
    options: dict[str, Any] = {"stream_options": {"include_usage": True}}
    text = (await read(await p.proxy.call(p.key, openai_call(stream=True, **options)))).decode()
    assert '"content": "yo"' in text
    assert '"prompt_tokens": 9' in text
    assert text.rstrip().endswith("data: [DONE]")
    assert "message_start" not in text
    await p.proxy.drain()
    assert await used(world) == (0, 0, 12)


async def test_a_streamed_fallback_tells_no_usage_the_caller_did_not_ask_for(
    world: World,
) -> None:
    events = (
        b'data: {"type": "message_start", "message": {"usage": {"input_tokens": 9}}}\n\n',
        b'data: {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "a"}}\n\n',
        b'data: {"type": "message_stop"}\n\n',
    )
    replies = {MOONSHOT: [Reply(429)], MINIMAX: [Reply(200, events, "text/event-stream")]}
    p = await make_proxy(world, replies)
    text = (await read(await p.proxy.call(p.key, openai_call(stream=True)))).decode()
    assert '"content": "a"' in text
    assert "prompt_tokens" not in text


async def test_the_models_listed_are_the_routes_then_the_tiers_selectable_ones(
    world: World,
) -> None:
    p = await make_proxy(world, tier="premium")
    assert await p.proxy.models(p.key) == (
        ListedModel("claude-sonnet-4-6", "Claude Sonnet 4.6", "anthropic"),
        ListedModel("kimi-k2.5", "Kimi K2.5", "moonshot"),
        ListedModel("claude-opus-4-6", "Claude Opus 4.6", "anthropic"),
    )


async def test_a_byok_tenants_own_model_is_listed_under_its_provider(world: World) -> None:
    p = await make_proxy(world, tier="byok")
    await world.add_key(allow_platform_fallback=True)
    listed = await p.proxy.models(p.key)
    assert not isinstance(listed, ProxyRefusal)
    assert listed[0] == ListedModel("gpt-4.1", "gpt-4.1", "openai")


def test_a_settlement_that_failed_in_its_own_task_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Failed:
        def cancelled(self) -> bool:
            return False

        def exception(self) -> BaseException:
            return RuntimeError("ledger down")

    class Cancelled(Failed):
        def cancelled(self) -> bool:
            return True

    with caplog.at_level(logging.ERROR, logger="tierkeeper.llm_proxy"):
        _report_failure(Cancelled())  # type: ignore[arg-type]
        assert caplog.records == []
        _report_failure(Failed())  # type: ignore[arg-type]
    [record] = caplog.records
    assert record.getMessage() == "a proxied call's settlement failed"
    assert record.exc_info is not None and str(record.exc_info[1]) == "ledger down"


def records(world: World) -> list[tuple[str, str, Credential, int, int, int]]:
    """What the ledger settled: (id, model, credential, input, output, cache reads)."""
    return [
        (r.message_id, r.model, r.credential, r.input_tokens, r.output_tokens,
         r.cache_read_tokens)
        for r in world.ledger.records
    ]  # fmt: skip


def is_call_id(message_id: str) -> bool:
    """A call's own ledger id: ``call-`` and 24 hex digits."""
    digits = message_id.removeprefix("call-")
    return message_id.startswith("call-") and len(digits) == 24 and int(digits, 16) >= 0


async def test_a_whole_answer_settles_under_the_calls_own_id_and_the_model_that_answered(
    world: World,
) -> None:
    replies = {MOONSHOT: [Reply(200, (openai_answer(30, 7)[:10], openai_answer(30, 7)[10:]))]}
    p = await make_proxy(world, replies)
    result = answer(await p.proxy.call(p.key, openai_call()))
    assert result.body == openai_answer(30, 7)  # chunks joined as they came
    await p.proxy.drain()
    [(call_id, *settled)] = records(world)
    assert is_call_id(call_id)
    assert settled == ["moonshot/kimi-k2.5", Credential.PLATFORM, 30, 7, 0]


async def test_a_streams_reservation_is_held_until_the_stream_ends(world: World) -> None:
    p = await make_proxy(world, {MOONSHOT: [Reply(200, (b"data: [DONE]\n\n",))]})
    result = await p.proxy.call(p.key, openai_call(stream=True, max_tokens=1_000))
    assert await used(world) == (0, 1_000, 0)
    await read(result)
    await p.proxy.drain()
    [(_, model, credential, *tokens)] = records(world)
    assert (model, credential, tokens) == ("moonshot/kimi-k2.5", Credential.PLATFORM, [0, 1_000, 0])


async def test_a_silent_stream_without_max_tokens_is_charged_the_catalog_default(
    world: World,
) -> None:
    p = await make_proxy(world, {MOONSHOT: [Reply(200, (b"data: [DONE]\n\n",))]})
    await read(await p.proxy.call(p.key, openai_call(stream=True, max_tokens=None)))
    await p.proxy.drain()
    assert await used(world) == (0, 0, world.catalog.reservation_tokens_default)


async def test_an_unreachable_primary_is_passed_over_for_the_next_upstream(world: World) -> None:
    replies = {MOONSHOT: [Reply(unreachable=True)], MINIMAX: [Reply(200, (anthropic_answer(),))]}
    p = await make_proxy(world, replies)
    result = answer(await p.proxy.call(p.key, openai_call()))
    assert result.attempts == (UpstreamAttempt("moonshot", None), UpstreamAttempt("minimax", 200))


async def test_a_selectable_model_outside_the_route_is_served_then_the_route_follows(
    world: World,
) -> None:
    replies = {ANTHROPIC: [Reply(529), Reply(200, (anthropic_answer(),))]}
    p = await make_proxy(world, replies, tier="premium")
    call = anthropic_call("claude-opus-4-6")
    result = answer(await p.proxy.call(p.key, call))
    assert result.attempts == (UpstreamAttempt("anthropic", 529), UpstreamAttempt("anthropic", 200))
    assert [p.upstream.body(i)["model"] for i in (0, 1)] == ["claude-opus-4-6",
                                                             "claude-sonnet-4-6"]  # fmt: skip


async def test_an_openai_stream_served_to_an_anthropic_caller_is_translated(
    world: World,
) -> None:
    """Premium: Sonnet first, then Kimi, which speaks the OpenAI format."""
    events = (b'data: {"choices": [{"delta": {"content": "ok"}, "finish_reason": "stop"}]}\n\n',
              b'data: {"choices": [], "usage": {"prompt_tokens": 6, "completion_tokens": 2}}\n\n',
              b"data: [DONE]\n\n")  # fmt: skip
    replies = {ANTHROPIC: [Reply(429)], MOONSHOT: [Reply(200, events, "text/event-stream")]}
    p = await make_proxy(world, replies, tier="premium")
    out = await read(await p.proxy.call(p.key, anthropic_call("claude-sonnet-4-6", stream=True)))
    text = out.decode()
    assert text.startswith("event: message_start\n")
    assert '"model": "kimi-k2.5"' in text
    assert '"text": "ok"' in text
    assert text.endswith('event: message_stop\ndata: {"type": "message_stop"}\n\n')
    await p.proxy.drain()
    [(_, model, credential, *tokens)] = records(world)
    assert (model, credential, tokens) == ("moonshot/kimi-k2.5", Credential.PLATFORM, [6, 2, 0])


async def test_a_tenant_key_found_unusable_when_the_call_is_sent_is_skipped(
    world: World,
) -> None:
    p = await make_proxy(world, {MOONSHOT: [Reply(200, (openai_answer(),))]}, tier="byok")
    await world.add_key(allow_platform_fallback=True)
    stored = await world.credential_repo.get(T)
    assert stored is not None
    elsewhere = InMemoryCredentialRepository()
    await elsewhere.put(attrs.evolve(stored, status=KeyStatus.INVALID))
    proxy = attrs.evolve(p.proxy, stored_credentials=elsewhere)
    result = answer(await proxy.call(p.key, openai_call("gpt-4.1")))
    assert result.attempts == (UpstreamAttempt("moonshot", 200),)
    gone = attrs.evolve(p.proxy, stored_credentials=InMemoryCredentialRepository())
    p.upstream.replies[MOONSHOT] = [Reply(200, (openai_answer(),))]
    result = answer(await gone.call(p.key, openai_call("gpt-4.1")))
    assert result.attempts == (UpstreamAttempt("moonshot", 200),)
    assert OPENAI not in p.upstream.urls()


async def test_a_tenants_own_key_settles_as_its_own_usage(world: World) -> None:
    p = await make_proxy(world, {OPENAI: [Reply(200, (openai_answer(12, 3),))]}, tier="byok")
    await world.add_key()
    answer(await p.proxy.call(p.key, openai_call("gpt-4.1")))
    await p.proxy.drain()
    [(_, model, credential, *tokens)] = records(world)
    assert (model, credential, tokens) == ("byok-openai/gpt-4.1", Credential.TENANT, [12, 3, 0])


async def test_a_refused_call_settles_nothing_under_the_requested_model(world: World) -> None:
    p = await make_proxy(world, {MOONSHOT: [Reply(429)], MINIMAX: [Reply(429)]})
    refusal(await p.proxy.call(p.key, openai_call()))
    [(call_id, *settled)] = records(world)
    assert is_call_id(call_id)
    assert settled == ["kimi-k2.5", Credential.PLATFORM, 0, 0, 0]


async def test_a_redirect_is_answered_whole_and_never_charged(world: World) -> None:
    body = b'{"usage": {"prompt_tokens": 9, "completion_tokens": 9}}'
    p = await make_proxy(world, {MOONSHOT: [Reply(300, (body,)), Reply(300, (body,))]})
    streamed = answer(await p.proxy.call(p.key, openai_call(stream=True)))
    assert (streamed.status_code, streamed.chunks, streamed.body) == (300, None, body)
    answer(await p.proxy.call(p.key, openai_call()))
    await p.proxy.drain()
    assert await used(world) == (0, 0, 0)


async def test_an_error_answers_usage_is_never_charged(world: World) -> None:
    body = b'{"error": "too long", "usage": {"prompt_tokens": 9, "completion_tokens": 1}}'
    p = await make_proxy(world, {MOONSHOT: [Reply(400, (body,))]})
    assert answer(await p.proxy.call(p.key, openai_call())).body == body
    await p.proxy.drain()
    assert await used(world) == (0, 0, 0)


async def test_a_fallbacks_redirect_is_the_proxys_own_upstream_error(world: World) -> None:
    replies = {MOONSHOT: [Reply(500)], MINIMAX: [Reply(300, (anthropic_answer(),))]}
    p = await make_proxy(world, replies)
    result = refusal(await p.proxy.call(p.key, openai_call()))
    assert (result.status_code, result.kind) == (502, RefusalKind.UPSTREAM)


async def test_an_empty_platform_key_leaves_the_error_body_as_it_came(world: World) -> None:
    p = await make_proxy(world, {MOONSHOT: [Reply(400, (b"bad",))]},
                         platform_keys={"moonshot": Secret("")})  # fmt: skip
    assert answer(await p.proxy.call(p.key, openai_call())).body == b"bad"


async def test_calls_racing_on_one_held_message_settle_every_token_once(world: World) -> None:
    """Two calls of one agent message: the first (streaming) claims its reservation, the
    second holds one of its own under its call id (issue #20); each settles its own
    tokens, none as a replay of the other."""
    events = (b'data: {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 1}}\n',)
    replies = {MOONSHOT: [Reply(200, events), Reply(200, (openai_answer(30, 7),))]}
    p = await make_proxy(world, replies)
    await world.metering.admit(T, MessageId("m-1"), max_tokens=2_000)
    streaming = await p.proxy.call(p.key, openai_call(stream=True, message_id="m-1"))
    answer(await p.proxy.call(p.key, openai_call(message_id="m-1")))
    await read(streaming)
    await p.proxy.drain()
    settled = {r[0]: r[1:] for r in records(world)}
    own = next(message_id for message_id in settled if message_id != "m-1")
    assert is_call_id(own)
    assert settled == {
        "m-1": ("moonshot/kimi-k2.5", Credential.PLATFORM, 4, 1, 0),
        own: ("moonshot/kimi-k2.5", Credential.PLATFORM, 30, 7, 0),
    }
    assert await used(world) == (1, 0, 42)


async def test_a_settlement_failing_after_the_answer_is_logged_and_drain_still_returns(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    @attrs.define
    class SettleFails(InMemoryUsageLedger):
        async def settle(self, request: Any) -> Any:
            raise RuntimeError("ledger down")

    p = await make_proxy(world, {MOONSHOT: [Reply(200, (openai_answer(),))]})
    ledger = SettleFails(tenants=world.tenant_repo)
    metering = Metering(world.catalog, world.tenant_repo, world.credential_repo, ledger,
                        world.clock)  # fmt: skip
    proxy = attrs.evolve(p.proxy, metering=metering)
    with caplog.at_level(logging.ERROR, logger="tierkeeper.llm_proxy"):
        answer(await proxy.call(p.key, openai_call()))
        await proxy.drain()
    assert [r.getMessage() for r in caplog.records] == ["a proxied call's settlement failed"]


async def test_a_platform_fallback_the_calls_own_hold_covers_answers_after_the_tenant_key_fails(
    world: World,
) -> None:
    """1,500 tokens are left of the fallback budget and the call holds 1,000 of them: when
    the tenant's own provider is rate limited, the platform fallback answers in the same
    call (the hold already covers it; it is never asked to fit a second time)."""
    replies = {OPENAI: [Reply(429, (b"slow down",))],
               MOONSHOT: [Reply(200, (openai_answer(),))]}  # fmt: skip
    p = await make_proxy(world, replies, tier="byok")
    await world.add_key(allow_platform_fallback=True)
    await world.metering.settle(T, MessageId("spent"), "moonshot/kimi-k2.5",
                                TokenUsage(498_500, 0), Credential.PLATFORM)  # fmt: skip
    result = answer(await p.proxy.call(p.key, openai_call("gpt-4.1", max_tokens=1_000)))
    assert result.attempts == (UpstreamAttempt("openai", 429), UpstreamAttempt("moonshot", 200))


@attrs.define
class HeldUpstream(ScriptedUpstream):
    """Holds the first request it is sent until ``release`` is set."""

    entered: asyncio.Event = attrs.Factory(asyncio.Event)
    release: asyncio.Event = attrs.Factory(asyncio.Event)

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        if not self.entered.is_set():
            self.entered.set()
            await self.release.wait()
        return await ScriptedUpstream.send(self, request)


async def settled_meanwhile(
    world: World, reply: Reply
) -> list[tuple[str, str, Credential, int, int]]:
    """A call naming message m-1 waits on the provider while the gateway settles m-1 itself
    (5 tokens); what the ledger holds once the call has settled too: (id, model, credential,
    input, output)."""
    p = await make_proxy(world)
    held = HeldUpstream({MOONSHOT: [reply]})
    proxy = attrs.evolve(p.proxy, upstream=held)
    await world.metering.admit(T, MessageId("m-1"), max_tokens=2_000)
    waiting = asyncio.ensure_future(proxy.call(p.key, openai_call(message_id="m-1")))
    await held.entered.wait()
    await world.metering.settle(T, MessageId("m-1"), "moonshot/kimi-k2.5",
                                TokenUsage(5, 0), Credential.PLATFORM)  # fmt: skip
    held.release.set()
    answer(await waiting)
    await proxy.drain()
    return [r[:5] for r in records(world)]


async def test_a_call_whose_message_was_settled_meanwhile_counts_its_tokens_apart(
    world: World,
) -> None:
    """The message's settlement is replayed for the call, so its 37 tokens settle under an
    id of their own: counted in full, never free."""
    settled = await settled_meanwhile(world, Reply(200, (openai_answer(30, 7),)))
    model = "moonshot/kimi-k2.5"
    assert settled[0] == ("m-1", model, Credential.PLATFORM, 5, 0)
    assert [r[1:] for r in settled[1:]] == [(model, Credential.PLATFORM, 30, 7)]
    assert re.fullmatch(r"m-1~[0-9a-f]{16}", settled[1][0])
    assert (await used(world))[2] == 42


async def test_a_call_whose_message_was_settled_meanwhile_and_used_nothing_adds_nothing(
    world: World,
) -> None:
    """An error answer used no tokens: the replayed settlement gets no second record."""
    settled = await settled_meanwhile(world, Reply(400))
    assert settled == [("m-1", "moonshot/kimi-k2.5", Credential.PLATFORM, 5, 0)]
    assert (await used(world))[2] == 5


@attrs.define
class FailingUpstream(ScriptedUpstream):
    """Raises ``error`` from ``send`` (after recording the request), or, with
    ``wait``, never answers."""

    error: BaseException | None = None
    wait: bool = False
    sent: asyncio.Event = attrs.Factory(asyncio.Event)

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        self.requests.append(request)
        self.sent.set()
        if self.wait:
            await asyncio.Event().wait()
        assert self.error is not None
        raise self.error


async def test_a_call_failing_while_its_request_is_out_settles_its_whole_reservation(
    world: World,
) -> None:
    p = await make_proxy(world)
    proxy = attrs.evolve(p.proxy, upstream=FailingUpstream(error=RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        await proxy.call(p.key, openai_call(max_tokens=1_000))
    await proxy.drain()
    # what the provider did with it is not known: the reservation counts, nothing stays held
    assert await used(world) == (0, 0, 1_000)
    (record,) = world.ledger.records
    assert (record.model, record.output_tokens) == ("moonshot/kimi-k2.5", 1_000)


async def test_a_call_failing_after_its_upstream_answered_holds_and_counts_nothing(
    world: World,
) -> None:
    """The provider answered 500 (no tokens spent) and closing that answer failed."""

    @attrs.define
    class CloseFails(ScriptedUpstream):
        async def send(self, request: UpstreamRequest) -> UpstreamResponse:
            response = await super().send(request)

            async def close() -> None:
                raise RuntimeError("close failed")

            return attrs.evolve(response, close=close)

    p = await make_proxy(world)
    upstream = CloseFails({MOONSHOT: [Reply(500, (b"down",))]})
    proxy = attrs.evolve(p.proxy, upstream=upstream)
    with pytest.raises(RuntimeError, match="close failed"):
        await proxy.call(p.key, openai_call(max_tokens=1_000))
    await proxy.drain()
    assert await used(world) == (0, 0, 0)


async def test_a_call_cancelled_while_its_request_is_out_settles_its_whole_reservation(
    world: World,
) -> None:
    p = await make_proxy(world)
    upstream = FailingUpstream(wait=True)
    proxy = attrs.evolve(p.proxy, upstream=upstream)
    call = asyncio.ensure_future(proxy.call(p.key, openai_call(max_tokens=1_000)))
    await upstream.sent.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await proxy.drain()
    assert await used(world) == (0, 0, 1_000)


async def test_a_whole_answer_failing_as_it_is_read_settles_its_whole_reservation(
    world: World,
) -> None:
    @attrs.define
    class BreaksMidAnswer(ScriptedUpstream):
        async def send(self, request: UpstreamRequest) -> UpstreamResponse:
            async def chunks() -> AsyncIterator[bytes]:
                yield b'{"choices": ['
                raise RuntimeError("the answer broke")

            async def close() -> None:
                self.closed.append(request.url)

            return UpstreamResponse(200, "application/json", chunks(), close)

    p = await make_proxy(world)
    proxy = attrs.evolve(p.proxy, upstream=BreaksMidAnswer())
    with pytest.raises(RuntimeError, match="the answer broke"):
        await proxy.call(p.key, openai_call(max_tokens=1_000))
    await proxy.drain()
    assert await used(world) == (0, 0, 1_000)
    assert [r.model for r in world.ledger.records] == ["moonshot/kimi-k2.5"]
    assert proxy.upstream.closed == [MOONSHOT]  # type: ignore[attr-defined]


async def test_a_key_store_failing_before_anything_is_sent_holds_and_counts_nothing(
    world: World,
) -> None:
    p = await make_proxy(world, tier="byok")
    await world.add_key()
    world.key_store.available = False
    with pytest.raises(KeyStoreUnavailable):
        await p.proxy.call(p.key, openai_call("gpt-4.1"))
    await p.proxy.drain()
    usage = await world.metering.usage(T)
    assert (usage.fallback_tokens_reserved, usage.fallback_tokens_used) == (0, 0)
    assert p.upstream.requests == []
