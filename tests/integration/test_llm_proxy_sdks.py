"""The metering LLM proxy (spec §13) driven by the official ``openai`` and ``anthropic``
Python SDKs, as a tenant's gateway would, against the app running in its own uvicorn
process, in front of a local upstream speaking both wire formats (tests/support/llm_stub.py).

The tenants are made through the use cases on the same SQLite file, in proxy mode, so their
virtual keys come from the ``.env`` files the config writer wrote.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import attrs
import httpx
import openai
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from adapters.catalog.toml_loader import load_catalog
from adapters.sql.database import upgrade
from adapters.sql.urls import sync_url
from domain.byok import CredentialInput, KeyStatus
from domain.ids import MessageId, TenantId
from domain.metering import UsageRecord
from domain.proxy import WireFormat
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus
from domain.use_cases.budget_leases import LEASE_SECONDS
from domain.use_cases.llm_proxy import ProxyAnswer, ProxyCall, ProxyRefusal
from domain.virtual_keys import VIRTUAL_KEY_ENV
from entrypoints.bootstrap import Services, build_services
from entrypoints.settings import Settings
from tests.http.conftest import PASSWORD, TEST_PASSWORD_HASHER
from tests.support import postgres
from tests.support.app_server import AppServer, running_app
from tests.support.llm_stub import LlmStub, running_llm_stub
from tests.support.openclaw import ensure_installed

pytestmark = pytest.mark.integration

PLATFORM_KEYS = {
    "moonshot": "pk-moonshot-PLATFORMSECRET0001",
    "minimax": "pk-minimax-PLATFORMSECRET0002",
    "anthropic": "sk-ant-PLATFORMSECRET0003",
}
TENANT_KEY = "sk-proj-TENANTSECRET4242abcd"
METRICS_TOKEN = "proxy-metrics-scraper-token-0123456789"
USAGE = (23, 11, 5)
_emails = itertools.count()


@attrs.frozen
class ProxyTenant:
    id: TenantId
    virtual_key: str
    user_id: str


@attrs.define
class ProxyWorld:
    environ: dict[str, str]
    app: AppServer
    stub: LlmStub
    config_root: Path
    seen: list[str] = attrs.Factory(list)
    """Every response body and header the tests received, for the secrets scan."""

    def services(self) -> Any:
        return build_services(
            Settings.from_environ(self.environ), password_hasher=TEST_PASSWORD_HASHER
        )

    def tenant(
        self, tier: str, provider: str | None = None, key: str = TENANT_KEY, allow: bool = True
    ) -> ProxyTenant:
        return asyncio.run(self._tenant(tier, provider, key, allow))

    async def _tenant(self, tier: str, provider: str | None, key: str, allow: bool) -> ProxyTenant:
        services: Services = await self.services()
        try:
            signed = await services.accounts.signup(
                f"proxy{next(_emails)}-{time.monotonic_ns()}@example.com", Secret(PASSWORD)
            )
            tenant_id = signed.tenant.id
            await services.tenants.change_tier(tenant_id, tier, SubscriptionStatus.ACTIVE)
            if provider is not None:
                model = services.catalog.byok_provider(provider).models[0].id
                await services.credentials.put(
                    tenant_id, signed.user.id, CredentialInput(provider, model, Secret(key), allow)
                )
        finally:
            await services.close()
        env_file = self.config_root / tenant_id / ".env"
        name, _, value = env_file.read_text().strip().partition("=")
        assert name == VIRTUAL_KEY_ENV
        return ProxyTenant(tenant_id, value, signed.user.id)

    def records(self, tenant_id: TenantId) -> list[UsageRecord]:
        async def read() -> list[UsageRecord]:
            services: Services = await self.services()
            try:
                now = datetime.now(UTC)
                rows = await services.ports.ledger.usage_records(
                    now - timedelta(hours=1), now + timedelta(hours=1)
                )
            finally:
                await services.close()
            return [r for r in rows if r.tenant_id == tenant_id]

        return asyncio.run(read())

    def wait_for_records(self, tenant_id: TenantId, count: int) -> list[UsageRecord]:
        deadline = time.monotonic() + 15
        while True:
            rows = self.records(tenant_id)
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)

    def key_status(self, tenant_id: TenantId) -> KeyStatus:
        async def read() -> KeyStatus:
            services: Services = await self.services()
            try:
                stored = await services.ports.credentials.get(tenant_id)
            finally:
                await services.close()
            assert stored is not None
            return stored.status

        return asyncio.run(read())

    def openai(self, tenant: ProxyTenant) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.app.base_url}/v1", api_key=tenant.virtual_key, max_retries=0
        )

    def anthropic(self, tenant: ProxyTenant) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=self.app.base_url, api_key=tenant.virtual_key, max_retries=0
        )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Every proxy test runs on both ledgers: the app on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('llm-proxy-db') / 'tierkeeper.sqlite3'}"
        return
    with postgres.fresh_database("llm_proxy", durable=False) as url:
        yield url


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[ProxyWorld]:
    root = tmp_path_factory.mktemp("llm-proxy")
    upgrade(database_url)
    with running_llm_stub() as stub:
        stub.usage = USAGE
        environ = {
            **os.environ,
            "TIERKEEPER_VAR_DIR": str(root / "var"),
            "TIERKEEPER_DATABASE_URL": database_url,
            "TIERKEEPER_CONFIG_ROOT": str(root / "openclaw"),
            "TIERKEEPER_SECRET_KEY": "proxy-test-platform-secret-0123456789",
            "TIERKEEPER_OPENCLAW_MODE": "proxy",
            "TIERKEEPER_PROXY_URL": "http://127.0.0.1:9/",
            "TIERKEEPER_METRICS_TOKEN": METRICS_TOKEN,
            **{f"TIERKEEPER_PLATFORM_KEY_{p.upper()}": k for p, k in PLATFORM_KEYS.items()},
            **stub.provider_env(load_catalog()),
        }
        with running_app(environ, root) as app:
            # configs written from here on point the gateways at this app
            environ["TIERKEEPER_PROXY_URL"] = app.base_url
            yield ProxyWorld(environ, app, stub, root / "openclaw")


@pytest.fixture(autouse=True)
def fresh_stub(world: ProxyWorld) -> None:
    world.stub.fail.clear()
    world.stub.chunks = 3
    world.stub.chunk_delay_s = 0.0
    world.stub.answer_delay_s = 0.0


def usage_of(record: UsageRecord) -> tuple[int, int, int]:
    return (record.input_tokens, record.output_tokens, record.cache_read_tokens)


def test_openai_sdk_call_is_answered_on_the_platform_key_and_settles_the_reported_usage(
    world: ProxyWorld,
) -> None:
    tenant = world.tenant("starter")
    answer = world.openai(tenant).chat.completions.create(
        model="kimi-k2.5", messages=[{"role": "user", "content": "hi"}], max_tokens=100
    )
    assert answer.choices[0].message.content == "moonshot:kimi-k2.5 part1 part2"
    served = world.stub.served("moonshot")[-1]
    assert served.key == PLATFORM_KEYS["moonshot"]
    assert served.body["model"] == "kimi-k2.5"
    (record,) = world.wait_for_records(tenant.id, 1)
    assert usage_of(record) == USAGE
    assert (record.model, record.credential.value) == ("moonshot/kimi-k2.5", "platform")


def test_openai_sdk_stream_arrives_in_chunks_and_settles_the_streams_usage(
    world: ProxyWorld,
) -> None:
    """The proxy asks the provider for the usage chunk (``stream_options.include_usage``)
    even when the caller did not, and settles exactly what it reported."""
    tenant = world.tenant("starter")
    stream = world.openai(tenant).chat.completions.create(
        model="kimi-k2.5", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    pieces = [
        c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert pieces == ["moonshot:kimi-k2.5", " part1", " part2"]
    assert world.stub.served("moonshot")[-1].body["stream_options"] == {"include_usage": True}
    (record,) = world.wait_for_records(tenant.id, 1)
    assert usage_of(record) == USAGE


def test_anthropic_sdk_call_and_stream_settle_the_reported_usage(world: ProxyWorld) -> None:
    tenant = world.tenant("premium")
    client = world.anthropic(tenant)
    message = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=200, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].text == "anthropic:claude-sonnet-4-6 part1 part2"  # type: ignore[union-attr]
    assert world.stub.served("anthropic")[-1].key == PLATFORM_KEYS["anthropic"]
    with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=200, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "anthropic:claude-sonnet-4-6 part1 part2"
    assert final.usage.output_tokens == USAGE[1]
    records = world.wait_for_records(tenant.id, 2)
    assert [usage_of(r) for r in records] == [USAGE, USAGE]
    assert {r.model for r in records} == {"anthropic/claude-sonnet-4-6"}


def test_a_rate_limited_or_failing_upstream_falls_back_inside_the_same_call(
    world: ProxyWorld,
) -> None:
    """A BYOK OpenAI tenant: its own model answers 429, then 500; each call is answered by
    the platform's Kimi fallback, and the tokens count as platform usage."""
    tenant = world.tenant("byok", "openai")
    client = world.openai(tenant)
    for status in (429, 500):
        world.stub.fail["openai"] = [status]
        answer = client.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], max_tokens=50
        )
        assert answer.choices[0].message.content == "moonshot:kimi-k2.5 part1 part2"
    own_calls = world.stub.served("openai")
    assert [r.key for r in own_calls[-2:]] == [TENANT_KEY, TENANT_KEY]
    records = world.wait_for_records(tenant.id, 2)
    assert [(r.model, r.credential.value, usage_of(r)) for r in records] == [
        ("moonshot/kimi-k2.5", "platform", USAGE)
    ] * 2
    # without a failure the tenant's own key serves, counted as the tenant's
    answer = client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], max_tokens=50
    )
    assert answer.choices[0].message.content == "openai:gpt-4.1 part1 part2"
    records = world.wait_for_records(tenant.id, 3)
    assert sorted((r.model, r.credential.value) for r in records) == [
        ("byok-openai/gpt-4.1", "tenant"),
        ("moonshot/kimi-k2.5", "platform"),
        ("moonshot/kimi-k2.5", "platform"),
    ]


def test_a_whole_call_falls_back_across_wire_formats_and_reads_as_its_own_format(
    world: ProxyWorld,
) -> None:
    """Premium: Sonnet (Anthropic Messages) failing, the route's next choice Kimi speaks
    OpenAI Chat Completions: the call is translated there and the answer back, and the
    usage Kimi reported is settled on Kimi; a stream's events are translated as they
    pass."""
    tenant = world.tenant("premium")
    world.stub.fail["anthropic"] = [500]
    answer = world.anthropic(tenant).messages.create(
        model="claude-sonnet-4-6", max_tokens=300, system="be brief",
        messages=[{"role": "user", "content": "hi"}],
    )  # fmt: skip
    assert answer.content[0].type == "text"
    assert answer.content[0].text == "moonshot:kimi-k2.5 part1 part2"
    assert answer.model == "kimi-k2.5"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (USAGE[0], USAGE[1])
    served = world.stub.served("moonshot")[-1]
    assert served.key == PLATFORM_KEYS["moonshot"]
    assert served.body == {
        "model": "kimi-k2.5",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "max_tokens": 300,
    }
    (record,) = world.wait_for_records(tenant.id, 1)
    assert (record.model, usage_of(record)) == ("moonshot/kimi-k2.5", USAGE)

    world.stub.fail["anthropic"] = [500]
    with world.anthropic(tenant).messages.stream(
        model="claude-sonnet-4-6", max_tokens=300, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces == ["moonshot:kimi-k2.5", " part1", " part2"]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (USAGE[0], USAGE[1])
    assert world.stub.served("moonshot")[-1].body["stream_options"] == {"include_usage": True}
    records = world.wait_for_records(tenant.id, 2)
    assert [(r.model, usage_of(r)) for r in records] == [("moonshot/kimi-k2.5", USAGE)] * 2


def test_a_rejected_tenant_key_is_marked_invalid_and_the_call_continues_on_the_platform(
    world: ProxyWorld,
) -> None:
    bad_key = "sk-proj-unauthorized-TENANTSECRET9"
    tenant = world.tenant("byok", "openai", key=bad_key)
    answer = world.openai(tenant).chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], max_tokens=50
    )
    assert answer.choices[0].message.content == "moonshot:kimi-k2.5 part1 part2"
    assert world.key_status(tenant.id) is KeyStatus.INVALID
    (record,) = world.wait_for_records(tenant.id, 1)
    assert record.credential.value == "platform"
    # the regenerated config keeps the same virtual key: the gateway is not locked out
    env = (world.config_root / tenant.id / ".env").read_text()
    assert env == f"{VIRTUAL_KEY_ENV}={tenant.virtual_key}\n"


def test_a_tenant_key_rejected_without_fallback_answers_without_echoing_the_key(
    world: ProxyWorld,
) -> None:
    bad_key = "sk-proj-unauthorized-TENANTSECRET7"
    tenant = world.tenant("byok", "openai", key=bad_key, allow=False)
    with pytest.raises(openai.APIStatusError) as caught:
        world.openai(tenant).chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], max_tokens=50
        )
    assert caught.value.status_code == 502
    assert bad_key not in caught.value.response.text
    world.seen.append(caught.value.response.text)
    assert world.key_status(tenant.id) is KeyStatus.INVALID


def test_budget_refusals_come_in_each_providers_error_shape_with_429(world: ProxyWorld) -> None:
    """A call whose reservation cannot fit the period's budget is refused before anything
    is forwarded."""
    tenant = world.tenant("starter")
    before = len(world.stub.requests)
    with pytest.raises(openai.RateLimitError) as refused:
        world.openai(tenant).chat.completions.create(
            model="kimi-k2.5", messages=[{"role": "user", "content": "hi"}], max_tokens=600_000
        )
    body = refused.value.response.json()
    assert refused.value.status_code == 429
    assert body["error"]["code"] == "token_budget_exhausted"
    assert body["error"]["type"] == "insufficient_quota"
    assert "resets at" in body["error"]["message"]
    with pytest.raises(anthropic.RateLimitError) as refused_anthropic:
        world.anthropic(tenant).messages.create(
            model="MiniMax-M2.1",
            max_tokens=600_000,
            messages=[{"role": "user", "content": "hi"}],
            timeout=30,
        )
    shape = refused_anthropic.value.response.json()
    assert refused_anthropic.value.status_code == 429
    assert shape["type"] == "error"
    assert shape["error"]["type"] == "rate_limit_error"
    assert len(world.stub.requests) == before
    world.seen += [refused.value.response.text, refused_anthropic.value.response.text]


def test_a_caller_leaving_mid_stream_still_settles_what_the_provider_reported(
    world: ProxyWorld,
) -> None:
    """Anthropic reports input (and the first output token) in ``message_start``: leaving
    after the first text settles those. An OpenAI stream reports usage only at its end:
    leaving early settles the whole reservation."""
    world.stub.chunks = 40
    world.stub.chunk_delay_s = 0.1
    premium = world.tenant("premium")
    with world.anthropic(premium).messages.stream(
        model="claude-sonnet-4-6", max_tokens=300, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        first = next(iter(stream.text_stream))
    assert first == "anthropic:claude-sonnet-4-6"
    (record,) = world.wait_for_records(premium.id, 1)
    assert usage_of(record) == (USAGE[0], 1, USAGE[2])

    starter = world.tenant("starter")
    stream_openai = world.openai(starter).chat.completions.create(
        model="kimi-k2.5", messages=[{"role": "user", "content": "hi"}], stream=True,
        max_tokens=700,
    )  # fmt: skip
    next(iter(stream_openai))
    stream_openai.close()
    (record,) = world.wait_for_records(starter.id, 1)
    assert usage_of(record) == (0, 700, 0)


def messages_used(world: ProxyWorld, tenant: ProxyTenant) -> tuple[int, int]:
    """The tenant's messages today and the tokens reserved in its period."""

    async def read() -> tuple[int, int]:
        services: Services = await world.services()
        try:
            view = await services.metering.usage(tenant.id)
            return view.messages_used, view.tokens_reserved
        finally:
            await services.close()

    return asyncio.run(read())


def admit_message(world: ProxyWorld, tenant: ProxyTenant, message_id: str) -> int:
    """The gateway's admission of one agent message; the messages remaining today."""

    async def admit() -> int:
        services: Services = await world.services()
        try:
            admission = await services.metering.admit(tenant.id, MessageId(message_id), 1000)
            return admission.messages_remaining or 0
        finally:
            await services.close()

    return asyncio.run(admit())


def test_a_call_naming_its_admitted_message_settles_against_that_message(
    world: ProxyWorld,
) -> None:
    """The gateway admits the message (counting it once against the day's cap); the calls
    it makes carry its id: the first settles that message, a second one holds and settles
    a reservation of its own."""
    tenant = world.tenant("starter")
    remaining = admit_message(world, tenant, "agent-msg-1")
    client = world.openai(tenant)
    for _ in range(2):
        client.chat.completions.create(
            model="kimi-k2.5",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-tierkeeper-message-id": "agent-msg-1"},
        )
    records = world.wait_for_records(tenant.id, 2)
    assert records[0].message_id == "agent-msg-1"
    assert records[1].message_id.startswith("call-")
    assert [usage_of(r) for r in records] == [USAGE, USAGE]
    assert messages_used(world, tenant) == (1, 0)
    assert remaining == 49


def test_a_call_naming_a_message_another_call_is_still_using_holds_its_own_reservation(
    world: ProxyWorld,
) -> None:
    """Two simultaneous calls naming one message: the streamed one, still in flight, uses
    the message's reservation; the other holds its own. Both settle their own usage (before
    issue #20's fix, the second settled as a replay of the first: tokens never counted)."""
    world.stub.chunks = 5
    world.stub.chunk_delay_s = 0.2
    tenant = world.tenant("starter")
    admit_message(world, tenant, "agent-msg-3")
    client = world.openai(tenant)
    named = {"x-tierkeeper-message-id": "agent-msg-3"}
    stream = client.chat.completions.create(
        model="kimi-k2.5", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True}, extra_headers=named,
    )  # fmt: skip
    chunks = iter(stream)
    next(chunks)
    client.chat.completions.create(
        model="kimi-k2.5", messages=[{"role": "user", "content": "hi"}], extra_headers=named
    )
    for _ in chunks:
        pass
    records = world.wait_for_records(tenant.id, 2)
    named_id, own_id = sorted(r.message_id for r in records)
    assert named_id == "agent-msg-3" and own_id.startswith("call-")
    assert [usage_of(r) for r in records] == [USAGE, USAGE]
    assert messages_used(world, tenant) == (1, 0)


def test_calls_without_a_message_id_count_no_message_but_settle_their_tokens(
    world: ProxyWorld,
) -> None:
    """Message caps stay with admission: OpenClaw's calls carry no message id, and each
    holds and settles its own reservation without touching the day's count."""
    tenant = world.tenant("starter")
    for _ in range(3):
        world.openai(tenant).chat.completions.create(
            model="kimi-k2.5", messages=[{"role": "user", "content": "hi"}], max_tokens=100
        )
    records = world.wait_for_records(tenant.id, 3)
    assert [usage_of(r) for r in records] == [USAGE] * 3
    assert all(r.message_id.startswith("call-") for r in records)
    # calls in quick succession drew from a budget lease: it gives the rest back in time
    assert wait_until_nothing_is_reserved(world, tenant) == (0, 0)


def wait_until_nothing_is_reserved(world: ProxyWorld, tenant: ProxyTenant) -> tuple[int, int]:
    """``messages_used`` once the tenant's budget leases were given back (their time is
    ``LEASE_SECONDS``), or as it stands after twice that."""
    deadline = time.monotonic() + 2 * LEASE_SECONDS + 2
    while (used := messages_used(world, tenant))[1] and time.monotonic() < deadline:
        time.sleep(0.1)
    return used


def reservation_rows(world: ProxyWorld, tenant: ProxyTenant) -> list[tuple[str, str, int]]:
    """(id, state, tokens) of the tenant's reservations in the database."""
    engine = sa.create_engine(sync_url(world.environ["TIERKEEPER_DATABASE_URL"]))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT message_id, state, tokens FROM reservations"
                    " WHERE tenant_id = :tenant ORDER BY admitted_at, message_id"
                ),
                {"tenant": tenant.id},
            ).all()
    finally:
        engine.dispose()
    return [(str(m), str(state), int(tokens)) for m, state, tokens in rows]


def test_a_burst_of_calls_is_served_from_one_budget_lease_and_settles_exactly(
    world: ProxyWorld,
) -> None:
    """Sixteen calls at once after a first one: the first reserves alone; the next ask one
    lease of 32 calls between them and draw from it in memory. Each call still settles its
    own usage under its own id, its reservation taken out of the lease, and the lease gives
    the rest back when its time is up: nothing stays reserved."""
    tenant = world.tenant("starter")
    client = world.openai(tenant)

    def call(_: int) -> str | None:
        answer = client.chat.completions.create(
            model="kimi-k2.5", messages=[{"role": "user", "content": "hi"}], max_tokens=100
        )
        return answer.choices[0].message.content

    call(0)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(call, range(16)))
    assert answers == ["moonshot:kimi-k2.5 part1 part2"] * 16
    records = world.wait_for_records(tenant.id, 17)
    assert [usage_of(r) for r in records] == [USAGE] * 17
    assert wait_until_nothing_is_reserved(world, tenant) == (0, 0)
    rows = reservation_rows(world, tenant)
    leases = [row for row in rows if row[0].startswith("lease-")]
    calls = [row for row in rows if row[0].startswith("call-")]
    assert len(calls) == 17 and {state for _, state, _ in calls} == {"settled"}
    # the lease held 3,200; sixteen calls took 100 each out of it; it gave back 1,600
    assert [(state, tokens) for _, state, tokens in leases] == [("released", 1_600)]


def test_a_second_call_naming_a_settled_message_is_budget_checked_before_forwarding(
    world: ProxyWorld,
) -> None:
    tenant = world.tenant("starter")
    admit_message(world, tenant, "agent-msg-2")
    client = world.openai(tenant)
    named = {"x-tierkeeper-message-id": "agent-msg-2"}
    client.chat.completions.create(
        model="kimi-k2.5", messages=[{"role": "user", "content": "hi"}], extra_headers=named
    )
    before = len(world.stub.requests)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(
            model="kimi-k2.5", messages=[{"role": "user", "content": "hi"}],
            max_tokens=500_000, extra_headers=named,
        )  # fmt: skip
    assert refused.value.response.json()["error"]["code"] == "token_budget_exhausted"
    assert len(world.stub.requests) == before
    assert len(world.records(tenant.id)) == 1
    world.seen.append(refused.value.response.text)


def test_a_model_the_tenant_may_not_use_is_refused_before_anything_is_reserved(
    world: ProxyWorld,
) -> None:
    tenant = world.tenant("starter")
    before = len(world.stub.requests)
    with pytest.raises(openai.NotFoundError) as refused:
        world.openai(tenant).chat.completions.create(
            model="claude-opus-4-6", messages=[{"role": "user", "content": "hi"}]
        )
    assert refused.value.response.json()["error"]["code"] == "model_not_found"
    assert len(world.stub.requests) == before
    assert world.records(tenant.id) == []
    assert messages_used(world, tenant) == (0, 0)
    world.seen.append(refused.value.response.text)


def test_an_openai_call_with_a_system_field_is_refused_before_anything_is_reserved(
    world: ProxyWorld,
) -> None:
    """Premium, whose route crosses wire formats: a fallback to Anthropic would drop
    Anthropic's ``system`` sent in an OpenAI call, so every route refuses it, with 400."""
    tenant = world.tenant("premium")
    before = len(world.stub.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        world.openai(tenant).chat.completions.create(
            model="kimi-k2.5", messages=[{"role": "user", "content": "hi"}],
            extra_body={"system": "be brief"},
        )  # fmt: skip
    assert refused.value.param == "system"
    assert refused.value.type == "invalid_request_error"
    assert "role 'system'" in refused.value.message
    assert len(world.stub.requests) == before
    assert world.records(tenant.id) == []
    assert messages_used(world, tenant) == (0, 0)
    world.seen.append(refused.value.response.text)


def test_parallel_calls_beyond_the_budget_forward_exactly_those_that_fit(
    world: ProxyWorld,
) -> None:
    """Eight calls at once each reserving 150,000 of the starter's 500,000 tokens, while the
    provider takes 2 s to answer (nothing settles before all are reserved): exactly three
    are forwarded; the five others get the 429 in OpenAI's shape."""
    world.stub.answer_delay_s = 2.0
    tenant = world.tenant("starter")
    client = world.openai(tenant)
    before = len(world.stub.requests)

    def one_call(_: int) -> str:
        try:
            client.chat.completions.create(
                model="kimi-k2.5", messages=[{"role": "user", "content": "hi"}],
                max_tokens=150_000, timeout=60,
            )  # fmt: skip
        except openai.RateLimitError as refused:
            world.seen.append(refused.response.text)
            return str(refused.response.json()["error"]["code"])
        return "answered"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = sorted(pool.map(one_call, range(8)))
    assert outcomes == ["answered"] * 3 + ["token_budget_exhausted"] * 5
    assert len(world.stub.requests) - before == 3
    assert [usage_of(r) for r in world.wait_for_records(tenant.id, 3)] == [USAGE] * 3
    assert messages_used(world, tenant) == (0, 0)


def proxy_metrics(world: ProxyWorld) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(
        f"{world.app.base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name.startswith("tierkeeper_proxy_") and sample.name.endswith("_total")
    }


def series(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (f"tierkeeper_proxy_{name}_total", tuple(sorted(labels.items())))


def test_metrics_count_proxied_calls_upstream_statuses_fallbacks_and_refusals(
    world: ProxyWorld,
) -> None:
    tenant = world.tenant("byok", "openai")
    before = proxy_metrics(world)
    world.stub.fail["openai"] = [429]
    world.openai(tenant).chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], max_tokens=50
    )
    with pytest.raises(openai.RateLimitError):
        world.openai(world.tenant("starter")).chat.completions.create(
            model="kimi-k2.5", messages=[{"role": "user", "content": "hi"}], max_tokens=600_000
        )
    with pytest.raises(anthropic.NotFoundError):
        world.anthropic(tenant).messages.create(
            model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    after = proxy_metrics(world)
    moved = {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}
    assert moved == {
        series("calls", endpoint="chat_completions", outcome="answered"): 1,
        series("calls", endpoint="chat_completions", outcome="refused"): 1,
        series("calls", endpoint="messages", outcome="refused"): 1,
        series("upstream_responses", provider="openai", status="429"): 1,
        series("upstream_responses", provider="moonshot", status="200"): 1,
        series("fallbacks", reason="rate_limited"): 1,
        series("refusals", reason="token_budget_exhausted"): 1,
        series("refusals", reason="model_not_found"): 1,
    }


@contextmanager
def period_locked(world: ProxyWorld, tenant_id: TenantId) -> Iterator[None]:
    """Hold what a settlement must lock: SQLite's write lock, or the tenant's period row on
    PostgreSQL; released on leaving."""
    engine = sa.create_engine(sync_url(world.environ["TIERKEEPER_DATABASE_URL"]))
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(
                    sa.text("SELECT 1 FROM usage_periods WHERE tenant_id = :t FOR UPDATE"),
                    {"t": tenant_id},
                )
            yield
            conn.rollback()
    finally:
        engine.dispose()


async def read_all(answer: ProxyAnswer | ProxyRefusal) -> bytes:
    """The answer's body, a stream read to its end."""
    assert isinstance(answer, ProxyAnswer) and answer.status_code == 200
    if answer.chunks is None:
        return answer.body
    return b"".join([chunk async for chunk in answer.chunks])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_an_answer_ends_before_it_settles_and_shutdown_waits_for_the_settlement(
    world: ProxyWorld, stream: bool
) -> None:
    """The settlement is off the caller's path: with the ledger held by another transaction
    the whole answer (or the stream, to its end) still arrives; closing the services waits
    for the settlement, which then counts exactly the reported usage."""
    tenant = world.tenant("starter")
    body = {"model": "kimi-k2.5", "messages": [{"role": "user", "content": "hi"}]}
    call = ProxyCall(
        wire=WireFormat.OPENAI, body=body | {"stream": stream}, model="kimi-k2.5",
        stream=stream, max_tokens=100, message_id=None,
    )  # fmt: skip

    async def answer_then_close() -> int:
        services: Services = await world.services()
        proxy = services.llm_proxy
        assert proxy is not None
        try:
            await read_all(await proxy.call(tenant.virtual_key, call))  # the period row exists
            world.stub.answer_delay_s = 1.0
            asked = len(world.stub.requests)
            calling = asyncio.ensure_future(proxy.call(tenant.virtual_key, call))
            for _ in range(3000):  # until reserved and forwarded (the stub answers in 1 s)
                if len(world.stub.requests) > asked:
                    break
                await asyncio.sleep(0.01)
            with period_locked(world, tenant.id):
                answer = await asyncio.wait_for(calling, 30)
                assert b"moonshot:kimi-k2.5" in await asyncio.wait_for(read_all(answer), 30)
                pending = len(proxy._finishing)
                closing = asyncio.ensure_future(services.close())
                await asyncio.sleep(0.5)
                assert not closing.done()  # waiting for the settlement behind the lock
        finally:
            if "closing" in locals():
                await asyncio.wait_for(closing, 60)
            else:
                await services.close()
        return pending

    assert asyncio.run(answer_then_close()) == 1
    assert [usage_of(r) for r in world.records(tenant.id)] == [USAGE, USAGE]


def test_models_lists_what_the_tenants_route_offers(world: ProxyWorld) -> None:
    tenant = world.tenant("premium")
    listed = [m.id for m in world.openai(tenant).models.list()]
    assert listed == ["claude-sonnet-4-6", "kimi-k2.5", "claude-opus-4-6"]
    anthropic_listed = [m.id for m in world.anthropic(tenant).models.list()]
    assert anthropic_listed == listed


def test_unknown_virtual_keys_and_real_provider_keys_are_refused(world: ProxyWorld) -> None:
    for key in ("tkv_not-a-real-key", PLATFORM_KEYS["moonshot"], ""):
        response = httpx.post(
            f"{world.app.base_url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"} if key else {},
            json={"model": "kimi-k2.5", "messages": []},
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    response = httpx.post(
        f"{world.app.base_url}/v1/messages",
        headers={"x-api-key": "tkv_nope", "anthropic-version": "2023-06-01"},
        json={"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": []},
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_one_openclaw_agent_turn_goes_through_the_proxy_to_the_upstream(
    world: ProxyWorld, tmp_path: Path
) -> None:
    """The pinned OpenClaw runs one embedded agent turn (``openclaw agent exec``) on the
    tenant's proxy-mode config, from its directory, so the virtual key comes from its
    ``.env``; the proxy swaps in the platform key and settles the turn's usage."""
    openclaw = ensure_installed(scratch=tmp_path / "openclaw-scratch")
    tenant = world.tenant("starter")
    directory = world.config_root / tenant.id
    env = {
        "PATH": f"{openclaw.node.parent}{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "OPENCLAW_NO_AUTO_UPDATE": "1",
        "OPENCLAW_CONFIG_READONLY": "1",
        "OPENCLAW_GATEWAY_TOKEN": "gateway-token-for-the-test",
        "npm_config_offline": "true",
        "NO_COLOR": "1",
    }
    (tmp_path / "home").mkdir()
    before = len(world.stub.served("moonshot"))
    done = subprocess.run(
        [str(openclaw.node), str(openclaw.entrypoint), "agent", "exec", "say hi",
         "--config", str(directory / "openclaw.json"), "--json", "--timeout", "240"],
        cwd=directory, env=env, capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout[done.stdout.index("{") :])
    assert (result["provider"], result["model"]) == ("moonshot", "kimi-k2.5")
    assert "moonshot:kimi-k2.5" in done.stdout
    served = world.stub.served("moonshot")[before:]
    assert served and {r.key for r in served} == {PLATFORM_KEYS["moonshot"]}
    records = world.wait_for_records(tenant.id, len(served))
    assert [usage_of(r) for r in records] == [USAGE] * len(served)
    for secret in PLATFORM_KEYS.values():
        assert secret not in done.stdout + done.stderr


def test_no_platform_or_tenant_key_appears_in_responses_logs_or_config_files(
    world: ProxyWorld,
) -> None:
    """Calls of every kind (answered, streamed, fallen back, key rejected, refused), then a
    scan of every response, the app's whole log and every file under the config root."""
    tenant = world.tenant("byok", "openai")
    rejected = world.tenant("byok", "openai", key="sk-proj-unauthorized-TENANTSECRET5")
    client = world.openai(tenant)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}]
    )
    world.seen += [raw.http_response.text, str(raw.http_response.headers)]
    world.stub.fail["openai"] = [429]
    with httpx.stream(
        "POST", f"{world.app.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {tenant.virtual_key}"},
        json={"model": "gpt-4.1", "messages": [], "stream": True},
    ) as streamed:  # fmt: skip
        # passed through as the provider sent it: never compressed (that would hold chunks)
        assert "content-encoding" not in streamed.headers
        world.seen += [streamed.read().decode(), str(streamed.headers)]
    response = httpx.post(
        f"{world.app.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {rejected.virtual_key}"},
        json={"model": "gpt-4.1", "messages": []},
    )
    world.seen += [response.text, str(response.headers)]
    secrets = [*PLATFORM_KEYS.values(), TENANT_KEY, "sk-proj-unauthorized-TENANTSECRET"]
    for text in world.seen:
        for secret in secrets:
            assert secret not in text
    log = world.app.log()
    assert "/v1/chat/completions" in log  # the request log is really there
    for secret in secrets:
        assert secret not in log
    files = [p for p in world.config_root.rglob("*") if p.is_file()]
    assert files
    for path in files:
        content = path.read_text()
        for secret in secrets:
            assert secret not in content, path
        if path.name == ".env":
            assert content.startswith(f"{VIRTUAL_KEY_ENV}=tkv_")
            assert content.count("\n") == 1
