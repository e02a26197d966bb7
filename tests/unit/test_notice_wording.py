"""The words of the notices not pinned in test_notification_wording: the limit crossings
(the daily message cap's warning, the cap reached with and without a higher plan, the token
budget's warning and a spent fallback budget), the welcome, a failed payment and a scheduled
cancellation; each with its link, button, tone and how long it is current."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.catalog import Catalog
from domain.notifications import Message, NotificationKind, Tone
from tests.unit.wording import composed

pytestmark = pytest.mark.unit

DAY_ENDS = datetime(2026, 3, 15, 23, tzinfo=UTC)
PERIOD_ENDS = datetime(2026, 3, 31, 22, tzinfo=UTC)
RESETS = "Mon 16 Mar 2026, 00:00 (Europe/Berlin)"
RENEWS = "Wed 1 Apr 2026, 00:00 (Europe/Berlin)"
ENDS = "Your subscription is set to end"
KEEPS = "Until then everything keeps working; you can resume the subscription before that date."
MESSAGES, TOKENS = NotificationKind.MESSAGES, NotificationKind.TOKENS


@pytest.mark.parametrize(
    ("tier", "kind", "counts", "expected"),
    [
        pytest.param("starter", MESSAGES, (80, 40, 50), Message(
            "80% of today's messages are used",
            "Your agent has answered 40 of 50 messages today on the Starter plan. The cap "
            f"resets on {RESETS}.",
            "/settings", "See your usage", Tone.WARNING, DAY_ENDS,
        ), id="a cap warning shows the messages answered and the local reset"),
        pytest.param("starter", MESSAGES, (100, 50, 50), Message(
            "Today's message cap is reached",
            "Your agent has answered all 50 messages of today on the Starter plan. The cap "
            f"resets on {RESETS}. A higher plan raises the cap at once.",
            "/onboarding", "Upgrade your plan", Tone.DANGER, DAY_ENDS,
        ), id="the cap reached at exactly 100 percent offers a higher plan"),
        pytest.param("premium", MESSAGES, (100, 200, 200), Message(
            "Today's message cap is reached",
            "Your agent has answered all 200 messages of today on the Premium plan. The cap "
            f"resets on {RESETS}.",
            "/settings", "See your usage", Tone.DANGER, DAY_ENDS,
        ), id="the cap reached on the highest cap (Premium's, matched by BYOK) offers no upgrade"),
        pytest.param("premium", TOKENS, (80, 800_000, 1_000_000), Message(
            "80% of your token budget is used",
            "800,000 of 1,000,000 tokens of this billing period are used on the Premium plan. "
            f"The budget renews on {RENEWS}.",
            "/settings", "See your usage", Tone.WARNING, PERIOD_ENDS,
        ), id="a token budget warning shows the share used and the renewal"),
        pytest.param("byok", TOKENS, (100, 500_000, 500_000), Message(
            "Your platform fallback budget is used up",
            "500,000 of 500,000 tokens of this billing period are used on the Bring Your Own "
            f"Key plan. The budget renews on {RENEWS}.",
            "/onboarding", "Upgrade your plan", Tone.DANGER, PERIOD_ENDS,
        ), id="a spent byok fallback budget offers an upgrade"),
    ],
)  # fmt: skip
def test_a_limit_crossing_is_worded_for_its_limit_share_and_plan(
    catalog: Catalog,
    tier: str,
    kind: NotificationKind,
    counts: tuple[int, int, int],
    expected: Message,
) -> None:
    percent, used, limit = counts
    window_key = "d" if kind is MESSAGES else "p"
    message = composed(
        catalog, tier, kind, percent=percent, used=used, limit=limit, window_key=window_key
    )
    assert message == expected


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
