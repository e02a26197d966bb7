"""The words of the notices not pinned in test_notification_wording: the daily message cap
(its warning, the cap reached with and without a higher plan), the welcome, a failed payment
and a scheduled cancellation; each with its link, button, tone and how long it is current."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.catalog import Catalog
from domain.notifications import Message, NotificationKind, Tone
from tests.unit.test_notification_wording import composed

pytestmark = pytest.mark.unit

DAY_ENDS = datetime(2026, 3, 15, 23, tzinfo=UTC)
RESETS = "Mon 16 Mar 2026, 00:00 (Europe/Berlin)"
ENDS = "Your subscription is set to end"
KEEPS = "Until then everything keeps working; you can resume the subscription before that date."


def test_a_cap_warning_shows_the_messages_answered_and_the_local_reset(catalog: Catalog) -> None:
    message = composed(catalog, "starter", NotificationKind.MESSAGES, percent=80, used=40,
                       limit=50, window_key="d")  # fmt: skip
    assert message == Message(
        "80% of today's messages are used",
        "Your agent has answered 40 of 50 messages today on the Starter plan. The cap resets "
        f"on {RESETS}.",
        "/settings", "See your usage", Tone.WARNING, DAY_ENDS,
    )  # fmt: skip


def test_the_cap_reached_at_exactly_100_percent_offers_a_higher_plan(catalog: Catalog) -> None:
    message = composed(catalog, "starter", NotificationKind.MESSAGES, percent=100, used=50,
                       limit=50, window_key="d")  # fmt: skip
    assert message == Message(
        "Today's message cap is reached",
        "Your agent has answered all 50 messages of today on the Starter plan. The cap resets "
        f"on {RESETS}. A higher plan raises the cap at once.",
        "/onboarding", "Upgrade your plan", Tone.DANGER, DAY_ENDS,
    )  # fmt: skip


def test_the_cap_reached_on_the_highest_cap_offers_no_upgrade(catalog: Catalog) -> None:
    """Premium's 200 a day is matched (by BYOK) but not exceeded: no plan raises it."""
    message = composed(catalog, "premium", NotificationKind.MESSAGES, percent=100, used=200,
                       limit=200, window_key="d")  # fmt: skip
    assert message == Message(
        "Today's message cap is reached",
        "Your agent has answered all 200 messages of today on the Premium plan. The cap "
        f"resets on {RESETS}.",
        "/settings", "See your usage", Tone.DANGER, DAY_ENDS,
    )  # fmt: skip


def test_the_welcome_is_the_text_worded_at_activation(catalog: Catalog) -> None:
    message = composed(catalog, "starter", NotificationKind.WELCOME, detail={"text": "Hello"})
    assert message == Message(
        "Welcome to the Starter plan", "Hello", "/settings", "Open your settings", Tone.INFO
    )
    assert composed(catalog, "starter", NotificationKind.WELCOME).body == ""


def test_a_failed_payment_names_the_plan_and_its_price(catalog: Catalog) -> None:
    message = composed(catalog, "starter", NotificationKind.PAYMENT_FAILED)
    assert message == Message(
        "Your payment did not go through",
        "We could not charge your card for the Starter plan ($7.00 / month). Your agent keeps "
        "answering during the grace period; please update your card.",
        "/settings", "Update payment details", Tone.DANGER,
    )  # fmt: skip


def test_a_scheduled_cancellation_names_its_local_end(catalog: Catalog) -> None:
    message = composed(catalog, "starter", NotificationKind.CANCELLATION_SCHEDULED,
                       detail={"ends_at": "2026-04-01T00:00:00+00:00"})  # fmt: skip
    assert message == Message(
        ENDS,
        f"Your Starter plan ends on Wed 1 Apr 2026, 02:00 (Europe/Berlin). {KEEPS}",
        "/settings", "Manage your plan", Tone.WARNING,
    )  # fmt: skip


def test_a_cancellation_without_its_end_date_says_it_ends_soon(catalog: Catalog) -> None:
    """Worded as a sentence ("ends soon"), not "ends on soon" as before."""
    message = composed(catalog, "starter", NotificationKind.CANCELLATION_SCHEDULED)
    assert message.body == f"Your Starter plan ends soon. {KEEPS}"
