"""The words of each notification as composed from the catalog and the tenant: token budget
warnings and exhaustion (own budget or BYOK fallback), a rejected key, plan changes, and
account mail; the link, button and tone that go with them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from domain.catalog import Catalog
from domain.ids import TenantId
from domain.notifications import (
    Message,
    NotificationFacts,
    NotificationId,
    NotificationKind,
    StoredNotification,
    Tone,
    compose,
)
from tests.unit.conftest import make_tenant

AT = datetime(2026, 3, 15, 12, tzinfo=UTC)
PERIOD_ENDS = datetime(2026, 3, 31, 22, tzinfo=UTC)
RENEWS = "Wed 1 Apr 2026, 00:00 (Europe/Berlin)"


def composed(catalog: Catalog, tier: str, kind: NotificationKind, **facts: Any) -> Message:
    tenant = make_tenant(tier=tier, timezone="Europe/Berlin")
    note = StoredNotification(
        NotificationId("msg_1"), NotificationFacts(TenantId("t-1"), kind, **facts), AT
    )
    return compose(catalog, tenant, note)


def test_a_token_budget_warning_shows_the_share_used_and_the_renewal(catalog: Catalog) -> None:
    message = composed(catalog, "premium", NotificationKind.TOKENS, percent=80, used=800_000,
                       limit=1_000_000, window_key="p")  # fmt: skip
    assert message == Message(
        "80% of your token budget is used",
        "800,000 of 1,000,000 tokens of this billing period are used on the Premium plan. "
        f"The budget renews on {RENEWS}.",
        "/settings", "See your usage", Tone.WARNING, PERIOD_ENDS,
    )  # fmt: skip


def test_a_spent_byok_fallback_budget_offers_an_upgrade(catalog: Catalog) -> None:
    message = composed(catalog, "byok", NotificationKind.TOKENS, percent=100, used=500_000,
                       limit=500_000, window_key="p")  # fmt: skip
    assert message == Message(
        "Your platform fallback budget is used up",
        "500,000 of 500,000 tokens of this billing period are used on the Bring Your Own Key "
        f"plan. The budget renews on {RENEWS}.",
        "/onboarding", "Upgrade your plan", Tone.DANGER, PERIOD_ENDS,
    )  # fmt: skip


def test_a_rejected_key_names_its_provider_and_the_platform_model_answering(
    catalog: Catalog,
) -> None:
    message = composed(catalog, "byok", NotificationKind.KEY_INVALIDATED, provider="openai")
    assert message == Message(
        "Your OpenAI key was rejected",
        "OpenAI refused the key you saved, so your agent is answering with Kimi K2.5 on our "
        "keys until you save a working key.",
        "/settings/ai-provider", "Replace the key", Tone.DANGER,
    )  # fmt: skip


def test_a_rejected_key_of_no_named_provider_is_the_provider_key(catalog: Catalog) -> None:
    message = composed(catalog, "byok", NotificationKind.KEY_INVALIDATED)
    assert message.title == "Your provider key was rejected"


def test_a_rejected_key_without_platform_models_says_our_platform_models(
    catalog: Catalog,
) -> None:
    byok = attrs.evolve(catalog.tier("byok"), platform_fallback_tier=None)
    alone = attrs.evolve(catalog, tiers=tuple(byok if t.id == "byok" else t for t in catalog.tiers))
    message = composed(alone, "byok", NotificationKind.KEY_INVALIDATED, provider="openai")
    assert "answering with our platform models on our keys" in message.body


def test_a_plan_change_now_names_both_plans_and_the_new_cap(catalog: Catalog) -> None:
    message = composed(catalog, "starter", NotificationKind.PLAN_CHANGED,
                       detail={"to_tier": "premium", "from_tier": "starter"})  # fmt: skip
    assert message == Message(
        "Your plan changes to Premium",
        "Your plan changes from Starter to Premium ($25.00 / month) now: up to 200 messages "
        "a day.",
        "/settings", "See your plan",
    )  # fmt: skip


def test_a_plan_change_later_names_its_local_date(catalog: Catalog) -> None:
    later = {"to_tier": "starter", "applies_at": "2026-04-01T00:00:00+00:00"}
    message = composed(catalog, "premium", NotificationKind.PLAN_CHANGED, detail=later)
    assert message.body == (
        "Your plan changes to Starter ($7.00 / month) on Wed 1 Apr 2026, 02:00 (Europe/Berlin): "
        "up to 50 messages a day."
    )


def test_a_plan_change_naming_no_tier_is_about_the_tier_in_force(catalog: Catalog) -> None:
    message = composed(catalog, "premium", NotificationKind.PLAN_CHANGED)
    assert message.title == "Your plan changes to Premium"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (NotificationKind.PASSWORD_RESET, Message(
            "Reset your password",
            "Someone (we hope you) asked to reset the password of your account. The link below "
            "works once, for 30 minutes. If it was not you, ignore this mail: your password "
            "stays as it is.",
            "", "Choose a new password",
        )),
        (NotificationKind.SIGNUP_ATTEMPT, Message(
            "Someone tried to sign up with your address",
            "Someone tried to create an account with this address, which already has one. If "
            "it was you, log in (or reset your password) with the link below. If not, nothing "
            "changed.",
            "", "Log in",
        )),
        (NotificationKind.PASSWORD_CHANGED, Message(
            "Your password was changed",
            "The password of your account was just changed and your other sessions were "
            "ended. If this was not you, reset your password now with the link below.",
            "", "Log in", Tone.WARNING,
        )),
        (NotificationKind.EMAIL_VERIFICATION, Message(
            "Confirm your email address",
            "Please confirm that this address is yours by opening the link below. It works "
            "once, for 24 hours.",
            "", "Confirm the address",
        )),
    ],
)  # fmt: skip
def test_account_mail_is_worded_for_its_kind(
    catalog: Catalog, kind: NotificationKind, expected: Message
) -> None:
    assert composed(catalog, "starter", kind) == expected
