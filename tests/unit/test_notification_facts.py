"""The facts a tenant change writes (and the once-only marks they carry), when a change is an
activation, the API name of a kind, and what a webhook URL may be."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from domain.errors import ValidationError
from domain.ids import TenantId, TierId
from domain.notifications import (
    DeliveryFailed,
    NotificationFacts,
    NotificationId,
    NotificationKind,
    StoredNotification,
    cancellation_facts,
    check_webhook_url,
    is_activation,
    tenant_change_facts,
    welcome_facts,
)
from domain.tenants import SubscriptionStatus
from tests.unit.conftest import make_tenant

pytestmark = pytest.mark.unit

T = TenantId("t-1")
NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
ACTIVE = make_tenant(tier="starter")
WORDS = "webhook_url must be an absolute http:// or https:// URL without user:password"


def test_the_welcome_is_marked_once_per_tier() -> None:
    assert welcome_facts(ACTIVE, "Hi") == NotificationFacts(
        T, NotificationKind.WELCOME, window_key="tier:starter", percent=0, detail={"text": "Hi"}
    )


def test_a_cancellation_is_marked_once_per_end_date() -> None:
    ends = datetime(2026, 4, 1, tzinfo=UTC)
    assert cancellation_facts(T, ends) == NotificationFacts(
        T, NotificationKind.CANCELLATION_SCHEDULED, window_key="2026-04-01T00:00:00+00:00",
        percent=0, detail={"ends_at": "2026-04-01T00:00:00+00:00"},
    )  # fmt: skip


def test_a_past_due_spell_is_marked_by_its_start() -> None:
    since = datetime(2026, 3, 10, tzinfo=UTC)
    after = attrs.evolve(ACTIVE, status=SubscriptionStatus.PAST_DUE, past_due_since=since)
    assert tenant_change_facts(ACTIVE, after, NOW, None) == [
        NotificationFacts(
            T, NotificationKind.PAYMENT_FAILED, window_key=since.isoformat(), percent=0
        )
    ]


def test_a_plan_change_of_an_active_tenant_names_both_tiers() -> None:
    after = attrs.evolve(ACTIVE, tier=TierId("premium"))
    (change,) = tenant_change_facts(ACTIVE, after, NOW, None)
    assert change == NotificationFacts(
        T, NotificationKind.PLAN_CHANGED, detail={"from_tier": "starter", "to_tier": "premium"}
    )


def test_a_welcome_text_without_an_activation_writes_nothing() -> None:
    assert tenant_change_facts(ACTIVE, ACTIVE, NOW, "Hi") == []


@pytest.mark.parametrize(
    ("before", "after", "activates"),
    [
        (SubscriptionStatus.INCOMPLETE, SubscriptionStatus.ACTIVE, True),
        (SubscriptionStatus.INCOMPLETE, SubscriptionStatus.CANCELED, False),
        (SubscriptionStatus.ACTIVE, SubscriptionStatus.ACTIVE, False),
    ],
)
def test_an_activation_is_becoming_active(
    before: SubscriptionStatus, after: SubscriptionStatus, activates: bool
) -> None:
    assert (
        is_activation(attrs.evolve(ACTIVE, status=before), attrs.evolve(ACTIVE, status=after))
        is activates
    )


def test_a_threshold_without_a_percent_is_named_by_its_kind_alone() -> None:
    note = StoredNotification(
        NotificationId("n"), NotificationFacts(T, NotificationKind.MESSAGES), NOW
    )
    assert note.api_kind() == "messages"


def test_a_delivery_failure_reads_as_its_reason() -> None:
    failure = DeliveryFailed("SMTP: 451")
    assert (str(failure), failure.reason) == ("SMTP: 451", "SMTP: 451")


def test_a_webhook_url_may_be_http_and_up_to_2000_characters() -> None:
    assert check_webhook_url("http://hooks.example.com/a") == "http://hooks.example.com/a"
    longest = "https://hooks.example.com/" + "a" * (2000 - 26)
    assert check_webhook_url(longest) == longest


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/" + "a" * (2001 - 26),
        "https://user@hooks.example.com/",
        "https://:pw@hooks.example.com/",
        "https://hooks.example.com/#part",
    ],
)
def test_a_webhook_url_too_long_with_a_user_or_a_fragment_is_refused_in_words(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_webhook_url(url)
    assert (str(caught.value), caught.value.field) == (WORDS, "webhook_url")
