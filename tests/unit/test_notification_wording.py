"""The words of each notification as composed from the catalog and the tenant: a rejected
key, plan changes, and account mail; the link, button and tone that go with them (the limit
crossings and the other notices: test_notice_wording)."""

from __future__ import annotations

import attrs
import pytest

from domain.catalog import Catalog
from domain.notifications import Message, NotificationKind, Tone
from tests.unit.wording import composed


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
