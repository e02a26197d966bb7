"""The operator's commands on the embedded setup: ``tenants list`` with its filters,
``tenants show`` (plan, usage, key state without the key, subscription, trail), and
``audit`` with ``--tenant`` and ``--since``."""

from __future__ import annotations

import asyncio
import getpass
import os
import re
from pathlib import Path

import pytest

from domain.byok import CredentialInput
from domain.ids import TenantId, UserId
from domain.notifications import channels_for, key_invalidated_facts
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus
from entrypoints.bootstrap import build_services
from entrypoints.cli import main
from entrypoints.settings import Settings
from tests.http.conftest import PASSWORD, TEST_PASSWORD_HASHER

pytestmark = pytest.mark.http

OPENAI_KEY = "sk-test-operator-cli-0123456789abcdef"


@pytest.fixture
def fresh_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("TIERKEEPER_"):
            monkeypatch.delenv(name)
    env = {
        "TIERKEEPER_VAR_DIR": str(tmp_path / "var"),
        "TIERKEEPER_SECRET_KEY": "operator-cli-platform-secret-0123456789",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["db", "upgrade"]) == 0
    return env


def run_cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def _seed(env: dict[str, str]) -> dict[str, str]:
    """Three signed-up tenants; the second on BYOK with a key."""
    services = await build_services(Settings.from_environ(env),
                                    password_hasher=TEST_PASSWORD_HASHER)  # fmt: skip
    try:
        ids = {}
        for email in ("ann@shop.example", "bob@corp.example", "cid@corp.example"):
            signed = await services.accounts.signup(email, Secret(PASSWORD))
            ids[email] = signed.tenant.id
        bob = ids["bob@corp.example"]
        await services.tenants.change_tier(bob, "byok", SubscriptionStatus.ACTIVE)
        submitted = CredentialInput("openai", "gpt-4.1", Secret(OPENAI_KEY), None)
        await services.credentials.put(bob, UserId("operator-test"), submitted)
        return ids
    finally:
        await services.close()


@pytest.fixture
def tenants(fresh_env: dict[str, str]) -> dict[str, str]:
    return asyncio.run(_seed(fresh_env))


def test_tenants_list_filters_by_tier_status_and_email(
    tenants: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli("tenants", "list", capsys=capsys)
    assert code == 0
    assert all(tenant_id in out for tenant_id in tenants.values())
    assert out.strip().endswith("3 tenant(s)")

    _, out, _ = run_cli("tenants", "list", "--search", "CORP", capsys=capsys)
    assert tenants["ann@shop.example"] not in out
    assert out.strip().endswith("2 tenant(s)")

    _, out, _ = run_cli("tenants", "list", "--tier", "byok", "--status", "active", capsys=capsys)
    assert tenants["bob@corp.example"] in out
    assert out.strip().endswith("1 tenant(s)")

    _, out, _ = run_cli("tenants", "list", "--status", "incomplete", "--search", "corp",
                        capsys=capsys)  # fmt: skip
    assert tenants["cid@corp.example"] in out
    assert out.strip().endswith("1 tenant(s)")


def test_tenants_list_refuses_an_unknown_tier(
    tenants: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli("tenants", "list", "--tier", "gold", capsys=capsys)
    assert code == 2
    assert "unknown tier 'gold'" in err


def test_tenants_show_prints_plan_usage_key_state_and_trail_but_never_the_key(
    tenants: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    bob = tenants["bob@corp.example"]
    code, out, _ = run_cli("tenants", "show", bob, capsys=capsys)
    assert code == 0
    assert f"tenant:        {bob}" in out
    assert "emails:        bob@corp.example" in out
    assert "tier:          byok" in out
    assert "status:        active" in out
    assert "time zone:     UTC" in out
    assert "messages today: 0 of " in out
    assert re.search(r"^key: +openai sk-…cdef, unverified, fernet v\d+, fallback on$", out, re.M)
    assert "fallback:      0 of 500,000 platform tokens" in out
    assert "subscription:  customer -, subscription -, billing day 1" in out
    assert "key.saved" in out and "tenant.tier_changed" in out
    assert OPENAI_KEY not in out
    assert OPENAI_KEY[-12:] not in out


def test_tenants_show_lists_recent_notifications_with_each_channels_outcome(
    fresh_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Ann signed up (a verification mail, email only), was welcomed on activation (email and
    webhook); after one delivery pass the mail was sent and the webhook, with no URL set,
    skipped. A notice still pending shows as pending."""
    ann = asyncio.run(_seed(fresh_env))["ann@shop.example"]
    assert (
        run_cli("tenants", "set-tier", ann, "starter", "--status", "active", capsys=capsys)[0] == 0
    )
    assert run_cli("notifications", "deliver", capsys=capsys)[0] == 0
    asyncio.run(_key_rejected(fresh_env, ann))
    code, out, _ = run_cli("tenants", "show", ann, capsys=capsys)
    assert code == 0
    lines = out.split("recent notifications:\n")[1].splitlines()
    assert len(lines) == 3, lines
    pattern = r"^  \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d {} msg_[0-9a-f]{{32}}: {}$"
    assert re.match(
        pattern.format("key_invalidated", r"email pending \(0 attempts\), webhook pending "
                       r"\(0 attempts\)"), lines[0]
    ), lines[0]  # fmt: skip
    assert re.match(
        pattern.format("welcome", r"email sent \(1 attempt\), webhook skipped \(1 attempt\)"),
        lines[1],
    ), lines[1]
    assert re.match(pattern.format("email_verification", r"email sent \(1 attempt\)"), lines[2])


async def _key_rejected(env: dict[str, str], tenant: str) -> None:
    services = await build_services(Settings.from_environ(env),
                                    password_hasher=TEST_PASSWORD_HASHER)  # fmt: skip
    try:
        facts, outbox = key_invalidated_facts(TenantId(tenant), "openai"), services.ports.outbox
        assert outbox is not None
        await outbox.enqueue(facts, channels_for(facts.kind), services.ports.clock.now())
    finally:
        await services.close()


def test_tenants_show_of_an_unknown_tenant_is_an_error(
    tenants: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli("tenants", "show", "t-none", capsys=capsys)
    assert code == 2
    assert "unknown" in err


def test_audit_lists_newest_first_by_tenant_and_since_and_records_the_operator(
    tenants: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    ann = tenants["ann@shop.example"]
    assert run_cli("tenants", "set-tier", ann, "premium", capsys=capsys)[0] == 0
    code, out, _ = run_cli("audit", "--tenant", ann, capsys=capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert "tenant.tier_changed" in lines[0]
    assert f"cli:{getpass.getuser()}" in lines[0]
    assert "tier starter -> premium" in lines[0]
    assert "account.signed_up" in lines[-2]
    assert lines[-1] == f"{len(lines) - 1} entries"
    assert all(ann in line for line in lines[:-1])

    _, everything, _ = run_cli("audit", capsys=capsys)
    assert int(everything.strip().splitlines()[-1].split()[0]) > len(lines) - 1
    _, future, _ = run_cli("audit", "--since", "2999-01-01", capsys=capsys)
    assert future.strip() == "0 entries"
    assert OPENAI_KEY not in everything and PASSWORD not in everything


def test_audit_refuses_a_since_that_is_not_a_date(
    fresh_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli("audit", "--since", "yesterday", capsys=capsys)
    assert code == 2
    assert "--since must be an ISO date" in err
