"""What the pages say about billing: the Billing panel's values and, on the plan cards of a
subscribed tenant, what each change of plan does and when."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.catalog import Catalog
from domain.ids import TierId
from domain.subscriptions import BillingStatus
from domain.tenants import SubscriptionStatus
from entrypoints.http.pages.billing_views import (
    billing_panel,
    checkout_return,
    local_date,
    plan_changes,
)
from tests.unit.conftest import make_tenant

END = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)


def status(tier: str = "starter", **changes: object) -> BillingStatus:
    values: dict[str, object] = {
        "tier": TierId(tier), "status": SubscriptionStatus.ACTIVE, "current_period_end": END,
        "cancel_at_period_end": False, "pending_tier": None, "has_subscription": True,
    }  # fmt: skip
    return BillingStatus(**(values | changes))  # type: ignore[arg-type]


def test_the_period_end_is_the_customers_local_date() -> None:
    assert local_date(END, "UTC") == "31 March 2026"
    assert local_date(END, "Europe/Berlin") == "1 April 2026"


def test_an_upgrade_says_it_starts_now_and_a_downgrade_when(catalog: Catalog) -> None:
    tenant = make_tenant(tier="starter", stripe_customer_id="cus_1")
    previews = plan_changes(catalog, tenant, status("starter"))
    assert set(previews) == {"premium", "byok"}
    up, down = previews["premium"], previews["byok"]
    assert (up.kind, up.label) == ("upgrade", "Upgrade to Premium")
    assert "Premium starts now" in up.summary and "31 March 2026" in up.summary
    assert (down.kind, down.label) == ("downgrade", "Switch to Bring Your Own Key")
    assert "You keep Starter until 31 March 2026" in down.summary


def test_while_a_downgrade_waits_the_current_tier_can_be_kept(catalog: Catalog) -> None:
    tenant = make_tenant(tier="premium")
    previews = plan_changes(catalog, tenant, status("premium", pending_tier=TierId("starter")))
    assert set(previews) == {"premium", "byok"}
    assert (previews["premium"].kind, previews["premium"].label) == ("return", "Keep Premium")


def test_without_a_subscription_the_cards_sell_checkouts(catalog: Catalog) -> None:
    assert plan_changes(catalog, make_tenant(), status(has_subscription=False)) == {}


def test_the_panel_names_the_scheduled_change_and_a_failed_payment(catalog: Catalog) -> None:
    tenant = make_tenant(tier="premium", stripe_customer_id="cus_1")
    panel = billing_panel(catalog, tenant, status(
        "premium", pending_tier=TierId("starter"), status=SubscriptionStatus.PAST_DUE))  # fmt: skip
    assert (panel.tier_name, panel.pending_tier_name, panel.period_end) == (
        "Premium", "Starter", "31 March 2026",
    )  # fmt: skip
    assert panel.payment_failed and panel.can_manage and not panel.ending
    assert not billing_panel(catalog, make_tenant(), status()).can_manage


def test_the_checkout_return_claims_nothing_before_stripe_confirms(catalog: Catalog) -> None:
    waiting = checkout_return(catalog, make_tenant(status=SubscriptionStatus.INCOMPLETE))
    assert not waiting.confirmed
    assert "went through" not in waiting.message
    done = checkout_return(catalog, make_tenant(tier="premium"))
    assert done.confirmed and "Premium plan is active" in done.message
