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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import attrs
import httpx
import openai
import pytest

from adapters.catalog.toml_loader import load_catalog
from adapters.sql.database import upgrade
from domain.byok import CredentialInput, KeyStatus
from domain.ids import MessageId, TenantId
from domain.metering import UsageRecord
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus
from domain.virtual_keys import VIRTUAL_KEY_ENV
from entrypoints.bootstrap import Services, build_services
from entrypoints.settings import Settings
from tests.http.conftest import PASSWORD, TEST_PASSWORD_HASHER
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


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyWorld]:
    root = tmp_path_factory.mktemp("llm-proxy")
    database = root / "tierkeeper.sqlite3"
    upgrade(f"sqlite:///{database}")
    with running_llm_stub() as stub:
        stub.usage = USAGE
        environ = {
            **os.environ,
            "TIERKEEPER_VAR_DIR": str(root / "var"),
            "TIERKEEPER_DATABASE_URL": f"sqlite:///{database}",
            "TIERKEEPER_CONFIG_ROOT": str(root / "openclaw"),
            "TIERKEEPER_SECRET_KEY": "proxy-test-platform-secret-0123456789",
            "TIERKEEPER_OPENCLAW_MODE": "proxy",
            "TIERKEEPER_PROXY_URL": "http://127.0.0.1:9/",
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
    (record,) = world.records(tenant.id)
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
    records = world.records(tenant.id)
    assert [(r.model, r.credential.value, usage_of(r)) for r in records] == [
        ("moonshot/kimi-k2.5", "platform", USAGE)
    ] * 2
    # without a failure the tenant's own key serves, counted as the tenant's
    answer = client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], max_tokens=50
    )
    assert answer.choices[0].message.content == "openai:gpt-4.1 part1 part2"
    last = world.records(tenant.id)[-1]
    assert (last.model, last.credential.value) == ("byok-openai/gpt-4.1", "tenant")


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
    (record,) = world.records(tenant.id)
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


def test_a_call_naming_its_admitted_message_settles_against_that_message(
    world: ProxyWorld,
) -> None:
    """The gateway admits the message (counting it once against the day's cap); the calls
    it makes carry its id: the first settles that message, a second one its own tokens."""
    tenant = world.tenant("starter")

    async def admit() -> int:
        services: Services = await world.services()
        try:
            admission = await services.metering.admit(tenant.id, MessageId("agent-msg-1"), 1000)
            return admission.messages_remaining or 0
        finally:
            await services.close()

    remaining = asyncio.run(admit())
    client = world.openai(tenant)
    for _ in range(2):
        client.chat.completions.create(
            model="kimi-k2.5",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-tierkeeper-message-id": "agent-msg-1"},
        )
    records = world.records(tenant.id)
    assert records[0].message_id == "agent-msg-1"
    assert records[1].message_id.startswith("agent-msg-1~")
    assert [usage_of(r) for r in records] == [USAGE, USAGE]

    async def messages_today() -> int:
        services: Services = await world.services()
        try:
            return (await services.metering.usage(tenant.id)).messages_used
        finally:
            await services.close()

    assert asyncio.run(messages_today()) == 1
    assert remaining == 49


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
