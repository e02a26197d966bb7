"""The subscription life cycle over HTTP, against a recording stand-in for Stripe's API (for
what localstripe lacks: Checkout, the Billing Portal, proration flags): the exact requests
sent to Stripe for checkout, plan changes, cancel, resume and the portal; one subscription per
tenant (409 on a second checkout); and signed events with malformed fields refused as 400."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from entrypoints.bootstrap import Services, build_services
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.http.conftest import (
    PASSWORD,
    PROBE_TIMEOUT_S,
    TEST_PASSWORD_HASHER,
    Customer,
    http_environ,
    sign_up,
    stripe_event,
    stripe_signature,
)
from tests.support.provider_stub import ProviderStub
from tests.support.recording_server import RecordedRequest, Recorder, recording_server

pytestmark = pytest.mark.http

WEBHOOK = "/api/v1/billing/webhook"
PERIOD_START = 1_772_323_200  # 2026-03-01T00:00:00Z
PERIOD_END = 1_775_001_600  # 2026-04-01T00:00:00Z
PRICE = {"starter": "price_starter_test", "premium": "price_premium_test"}


class StripeStandIn:
    """Answers the few Stripe requests tierkeeper makes like Stripe would, keeping one
    subscription's price and cancel flag as the requests change them."""

    def __init__(self) -> None:
        self.price = PRICE["starter"]
        self.cancel_at_period_end = False

    def subscription(self) -> dict[str, Any]:
        return {
            "id": "sub_rec", "object": "subscription", "customer": "cus_rec", "status": "active",
            "cancel_at_period_end": self.cancel_at_period_end,
            "metadata": {"tier": "starter"},
            "items": {"object": "list", "data": [{
                "id": "si_rec", "object": "subscription_item",
                "price": {"id": self.price, "object": "price"},
                "current_period_start": PERIOD_START, "current_period_end": PERIOD_END,
            }]},
        }  # fmt: skip

    def answer(self, request: RecordedRequest) -> dict[str, Any]:
        form = request.form()
        if request.path == "/v1/customers":
            return {"id": "cus_rec", "object": "customer"}
        if request.path == "/v1/checkout/sessions":
            return {"id": "cs_rec", "object": "checkout.session",
                    "url": "https://checkout.stripe.com/c/pay/cs_rec"}  # fmt: skip
        if request.path == "/v1/billing_portal/sessions":
            return {"id": "bps_rec", "object": "billing_portal.session",
                    "url": "https://billing.stripe.com/p/session/bps_rec"}  # fmt: skip
        if request.path == "/v1/subscriptions/sub_rec" and request.method == "POST":
            self.price = form.get("items[0][plan]", self.price)
            if "cancel_at_period_end" in form:
                self.cancel_at_period_end = form["cancel_at_period_end"] == "true"
        return self.subscription()


@pytest.fixture
def stand_in() -> StripeStandIn:
    return StripeStandIn()


@pytest.fixture
def stripe_api(stand_in: StripeStandIn) -> Iterator[Recorder]:
    with recording_server() as recorder:
        recorder.response = stand_in.answer
        yield recorder


@pytest.fixture
async def life_services(
    tmp_path: Path, sqlite_template: Path, provider_stub: ProviderStub, stripe_api: Recorder
) -> AsyncIterator[Services]:
    environ = http_environ(
        tmp_path, sqlite_template, provider_stub, TIERKEEPER_STRIPE_API_BASE=stripe_api.url
    )
    services = await build_services(
        Settings.from_environ(environ),
        probe_timeout_s=PROBE_TIMEOUT_S,
        password_hasher=TEST_PASSWORD_HASHER,
    )
    try:
        yield services
    finally:
        await services.close()


@pytest.fixture
async def api(life_services: Services) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(life_services)) as client:
        yield client


async def deliver(api: AsyncTestClient[Any], payload: bytes) -> Any:
    return await api.post(
        WEBHOOK,
        content=payload,
        headers={"Content-Type": "application/json", "Stripe-Signature": stripe_signature(payload)},
    )


async def subscribed(
    api: AsyncTestClient[Any], stand_in: StripeStandIn, stripe_api: Recorder
) -> Customer:
    """Sign up, check out the starter plan, and receive what Stripe sends once it is paid."""
    customer = await sign_up(api)
    checkout = await api.post(
        "/api/v1/billing/checkout", json={"tier": "starter"}, headers=customer.headers
    )
    assert checkout.status_code == 200, checkout.text
    completed = stripe_event("evt_cs", "checkout.session.completed", {
        "id": "cs_rec", "object": "checkout.session", "mode": "subscription",
        "payment_status": "paid", "customer": "cus_rec", "subscription": "sub_rec",
        "client_reference_id": customer.tenant_id,
        "metadata": {"tenant_id": customer.tenant_id, "tier": "starter"},
    })  # fmt: skip
    created = stripe_event(
        "evt_sub", "customer.subscription.created",
        stand_in.subscription() | {"metadata": {"tenant_id": customer.tenant_id}},
    )  # fmt: skip
    for payload in (completed, created):
        assert (await deliver(api, payload)).status_code == 200
    stripe_api.requests.clear()
    return customer


async def test_checkout_makes_one_customer_and_names_it_in_the_session(
    api: AsyncTestClient[Any], stripe_api: Recorder
) -> None:
    customer = await sign_up(api)
    response = await api.post(
        "/api/v1/billing/checkout", json={"tier": "starter"}, headers=customer.headers
    )
    assert response.status_code == 200
    new_customer, session = stripe_api.requests
    assert (new_customer.method, new_customer.path) == ("POST", "/v1/customers")
    assert new_customer.form() == {
        "metadata[tenant_id]": customer.tenant_id, "email": customer.email,
    }  # fmt: skip
    assert session.path == "/v1/checkout/sessions"
    assert session.form()["customer"] == "cus_rec"
    again = await api.post(
        "/api/v1/billing/checkout", json={"tier": "premium"}, headers=customer.headers
    )
    assert again.status_code == 200
    assert [r.path for r in stripe_api.requests[2:]] == ["/v1/checkout/sessions"]
    assert stripe_api.requests[2].form()["customer"] == "cus_rec"


async def test_a_second_checkout_answers_409_naming_change_plan_and_asks_stripe_nothing(
    api: AsyncTestClient[Any], stand_in: StripeStandIn, stripe_api: Recorder
) -> None:
    customer = await subscribed(api, stand_in, stripe_api)
    response = await api.post(
        "/api/v1/billing/checkout", json={"tier": "premium"}, headers=customer.headers
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "conflict"
    assert "/api/v1/billing/change-plan" in body["detail"]
    assert stripe_api.requests == []


async def test_billing_shows_the_subscription(
    api: AsyncTestClient[Any], stand_in: StripeStandIn, stripe_api: Recorder
) -> None:
    customer = await subscribed(api, stand_in, stripe_api)
    response = await api.get("/api/v1/billing", headers=customer.headers)
    assert response.status_code == 200
    assert response.json() == {
        "tier": "starter", "status": "active", "current_period_end": "2026-04-01T00:00:00Z",
        "cancel_at_period_end": False, "pending_tier": None, "has_subscription": True,
    }  # fmt: skip
    assert (await api.get("/api/v1/billing/", headers=customer.headers)).status_code == 200


async def test_an_upgrade_sends_the_new_price_prorated_and_invoiced_now(
    api: AsyncTestClient[Any], stand_in: StripeStandIn, stripe_api: Recorder
) -> None:
    customer = await subscribed(api, stand_in, stripe_api)
    response = await api.post(
        "/api/v1/billing/change-plan", json={"tier": "premium"}, headers=customer.headers
    )
    assert response.status_code == 200, response.text
    assert (response.json()["tier"], response.json()["pending_tier"]) == ("premium", None)
    read, update = stripe_api.requests
    assert (read.method, read.path) == ("GET", "/v1/subscriptions/sub_rec")
    assert (update.method, update.path) == ("POST", "/v1/subscriptions/sub_rec")
    assert update.form() == {
        "items[0][id]": "si_rec",
        "items[0][plan]": PRICE["premium"],
        "proration_behavior": "always_invoice",
    }
    tenant = (await api.get("/api/v1/tenant", headers=customer.headers)).json()
    assert tenant["tier"] == "premium"


async def test_a_downgrade_sends_the_new_price_without_proration_and_shows_it_pending(
    api: AsyncTestClient[Any], stand_in: StripeStandIn, stripe_api: Recorder
) -> None:
    customer = await subscribed(api, stand_in, stripe_api)
    await api.post("/api/v1/billing/change-plan", json={"tier": "premium"},
                   headers=customer.headers)  # fmt: skip
    stripe_api.requests.clear()
    response = await api.post(
        "/api/v1/billing/change-plan", json={"tier": "basic"}, headers=customer.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["tier"], body["pending_tier"], body["current_period_end"]) == (
        "premium", "starter", "2026-04-01T00:00:00Z",
    )  # fmt: skip
    assert stripe_api.requests[-1].form() == {
        "items[0][id]": "si_rec",
        "items[0][plan]": PRICE["starter"],
        "proration_behavior": "none",
    }
    # Stripe's own event of the change keeps the paid-for tier until the period ends
    updated = stripe_event(
        "evt_down", "customer.subscription.updated",
        stand_in.subscription() | {"metadata": {"tenant_id": customer.tenant_id}},
    )  # fmt: skip
    assert (await deliver(api, updated)).status_code == 200
    after = (await api.get("/api/v1/billing", headers=customer.headers)).json()
    assert (after["tier"], after["pending_tier"]) == ("premium", "starter")


async def test_cancel_and_resume_send_the_period_end_flag(
    api: AsyncTestClient[Any], stand_in: StripeStandIn, stripe_api: Recorder
) -> None:
    customer = await subscribed(api, stand_in, stripe_api)
    canceled = await api.post("/api/v1/billing/cancel", headers=customer.headers)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["cancel_at_period_end"] is True
    assert canceled.json()["status"] == "active"
    assert stripe_api.requests[-1].form() == {"cancel_at_period_end": "true"}
    again = await api.post("/api/v1/billing/cancel", headers=customer.headers)
    assert again.status_code == 409
    resumed = await api.post("/api/v1/billing/resume", headers=customer.headers)
    assert resumed.status_code == 200
    assert resumed.json()["cancel_at_period_end"] is False
    assert stripe_api.requests[-1].form() == {"cancel_at_period_end": "false"}


async def test_the_portal_session_is_for_the_tenants_customer(
    api: AsyncTestClient[Any], stand_in: StripeStandIn, stripe_api: Recorder
) -> None:
    customer = await subscribed(api, stand_in, stripe_api)
    response = await api.post("/api/v1/billing/portal", headers=customer.headers)
    assert response.status_code == 200
    assert response.json() == {"url": "https://billing.stripe.com/p/session/bps_rec"}
    (request,) = stripe_api.requests
    assert (request.method, request.path) == ("POST", "/v1/billing_portal/sessions")
    assert request.form() == {
        "customer": "cus_rec", "return_url": "http://127.0.0.1:8000/settings",
    }  # fmt: skip


async def test_without_a_subscription_the_life_cycle_endpoints_answer_409(
    api: AsyncTestClient[Any], stripe_api: Recorder
) -> None:
    customer = await sign_up(api)
    for path, body in (("change-plan", {"tier": "premium"}), ("cancel", None),
                       ("resume", None), ("portal", None)):  # fmt: skip
        response = await api.post(f"/api/v1/billing/{path}", json=body, headers=customer.headers)
        assert response.status_code == 409, path
        assert response.json()["code"] == "conflict"
    status = (await api.get("/api/v1/billing", headers=customer.headers)).json()
    assert status["has_subscription"] is False
    assert stripe_api.requests == []


async def test_a_change_plan_to_an_unknown_tier_names_the_field(
    api: AsyncTestClient[Any], stand_in: StripeStandIn, stripe_api: Recorder
) -> None:
    customer = await subscribed(api, stand_in, stripe_api)
    response = await api.post(
        "/api/v1/billing/change-plan", json={"tier": "platinum"}, headers=customer.headers
    )
    assert response.status_code == 422
    assert response.json()["field"] == "tier"
    assert stripe_api.requests == []


async def test_the_billing_endpoints_need_a_customer(api: AsyncTestClient[Any]) -> None:
    assert (await api.get("/api/v1/billing")).status_code == 401
    assert (await api.post("/api/v1/billing/cancel")).status_code == 401


# --- malformed signed events -----------------------------------------------------------------


def _subscription_event(tenant_id: str, **changes: Any) -> dict[str, Any]:
    obj = {
        "id": "sub_bad", "object": "subscription", "customer": "cus_bad", "status": "active",
        "metadata": {"tenant_id": tenant_id},
        "items": {"data": [{"price": {"id": PRICE["premium"]}}]},
    }  # fmt: skip
    event = {"id": "evt_bad", "object": "event", "type": "customer.subscription.created",
             "created": int(time.time()), "data": {"object": obj}}  # fmt: skip
    for path, value in changes.items():
        target: Any = event
        *parents, leaf = path.split(".")
        for part in parents:
            target = target[part]
        if value is _MISSING:
            del target[leaf]
        else:
            target[leaf] = value
    return event


_MISSING = object()

MALFORMED = [
    ("id", {"id": _MISSING}),
    ("id", {"id": 12345}),
    ("created", {"created": "yesterday"}),
    ("created", {"created": "1700000000"}),
    ("created", {"created": 10**20}),
    ("billing_cycle_anchor", {"data.object.billing_cycle_anchor": "soon"}),
    ("current_period_end", {"data.object.current_period_end": 1.5}),
    ("customer", {"data.object.customer": 42}),
    ("metadata", {"data.object.metadata": "t-1"}),
    ("items.data", {"data.object.items": {"data": "si_1"}}),
    ("cancel_at_period_end", {"data.object.cancel_at_period_end": "yes"}),
    ("data.object", {"data": {"object": ["sub_bad"]}}),
]


@pytest.mark.parametrize(("field", "changes"), MALFORMED, ids=[f for f, _ in MALFORMED])
async def test_a_signed_event_with_a_malformed_field_answers_400_and_applies_nothing(
    api: AsyncTestClient[Any], field: str, changes: dict[str, Any]
) -> None:
    customer = await sign_up(api)
    event = _subscription_event(customer.tenant_id, **changes)
    payload = json.dumps(event).encode()
    response = await deliver(api, payload)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_event"
    assert response.json()["field"] == field
    tenant = (await api.get("/api/v1/tenant", headers=customer.headers)).json()
    assert (tenant["tier"], tenant["status"]) == ("starter", "incomplete")
    fixed = json.dumps(_subscription_event(customer.tenant_id)).encode()
    assert (await deliver(api, fixed)).status_code == 200
    tenant = (await api.get("/api/v1/tenant", headers=customer.headers)).json()
    assert (tenant["tier"], tenant["status"]) == ("premium", "active")


@pytest.mark.parametrize(
    ("field", "invoice_changes"),
    [
        ("amount_paid", {"amount_paid": "7.00"}),
        ("amount_paid", {"amount_paid": -700}),
        ("currency", {"currency": 840}),
    ],
)
async def test_a_paid_invoice_with_a_malformed_amount_answers_400(
    api: AsyncTestClient[Any], field: str, invoice_changes: dict[str, Any]
) -> None:
    invoice = {"id": "in_bad", "object": "invoice", "customer": "cus_x", "amount_paid": 700,
               "currency": "usd", "subscription": "sub_x"} | invoice_changes  # fmt: skip
    response = await deliver(api, stripe_event("evt_inv_bad", "invoice.paid", invoice))
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("invalid_event", field)


# --- the plan form, without JavaScript -------------------------------------------------------

HTML = {"accept": "text/html,application/xhtml+xml"}


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the form carries no CSRF token"
    return found.group(1)


async def _subscribe_by_forms(
    api: AsyncTestClient[Any], stand_in: StripeStandIn, email: str
) -> Any:
    """Sign up and choose Starter with the forms, as a browser without JavaScript does, then
    let Stripe announce the subscription; the checkout response is returned."""
    signup = await api.get("/signup", headers=HTML)
    signed = await api.post(
        "/signup",
        data={"email": email, "password": PASSWORD, "csrf_token": _form_token(signup.text)},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    plans = await api.get("/onboarding", headers=HTML)
    chosen = await api.post("/onboarding", data={"tier": "starter",
                            "csrf_token": _form_token(plans.text)},
                            follow_redirects=False)  # fmt: skip
    tenant_id = (await api.get("/api/v1/tenant")).json()["id"]
    created = stripe_event(
        f"evt_form_sub_{tenant_id}", "customer.subscription.created",
        stand_in.subscription() | {"metadata": {"tenant_id": tenant_id}},
    )  # fmt: skip
    assert (await deliver(api, created)).status_code == 200
    return chosen


async def test_the_plan_form_changes_the_plan_of_a_subscribed_tenant_instead_of_a_checkout(
    api: AsyncTestClient[Any], stand_in: StripeStandIn, stripe_api: Recorder
) -> None:
    """The cards and the paused banner post ``/onboarding``; with a subscription that is a
    plan change on it (never a second subscription), announced on the plan page."""
    chosen = await _subscribe_by_forms(api, stand_in, "form-billing@example.com")
    assert chosen.status_code == 303
    assert chosen.headers["location"] == "https://checkout.stripe.com/c/pay/cs_rec"
    stripe_api.requests.clear()
    plans = await api.get("/onboarding", headers=HTML)
    assert "Upgrade to Premium" in plans.text
    changed = await api.post("/onboarding", data={"tier": "premium",
                             "csrf_token": _form_token(plans.text)},
                             follow_redirects=False)  # fmt: skip
    assert changed.status_code == 303
    assert changed.headers["location"] == "/settings?done=plan-changed"
    assert [r.path for r in stripe_api.requests] == ["/v1/subscriptions/sub_rec"] * 2
    assert stripe_api.requests[-1].form()["proration_behavior"] == "always_invoice"
    settings = await api.get("/settings?done=plan-changed", headers=HTML)
    assert "Your plan has changed." in settings.text
    assert (await api.get("/api/v1/billing")).json()["tier"] == "premium"


async def test_a_plan_change_is_confirmed_on_its_own_page_without_javascript(
    api: AsyncTestClient[Any], stand_in: StripeStandIn
) -> None:
    """The card's button is a GET form to a confirmation page saying what changes and when;
    its Confirm posts the plan form; a tier the subscription cannot change to leads back to
    the plans."""
    await _subscribe_by_forms(api, stand_in, "form-change@example.com")
    plans = await api.get("/onboarding", headers=HTML)
    assert 'action="/settings/change-plan"' in plans.text
    confirm = await api.get("/settings/change-plan?tier=premium", headers=HTML)
    assert confirm.status_code == 200
    assert "Upgrade to Premium?" in confirm.text
    assert "Stripe charges the difference" in confirm.text
    form = re.search(r'<form method="post" action="/onboarding".*?</form>', confirm.text, re.S)
    assert form and 'name="tier" value="premium"' in form.group(0)
    assert 'name="csrf_token"' in form.group(0)
    for tier in ("starter", "platinum", ""):
        away = await api.get(f"/settings/change-plan?tier={tier}", follow_redirects=False)
        assert (away.status_code, away.headers["location"]) == (303, "/onboarding")


async def test_cancel_resume_and_the_billing_portal_are_forms_that_work_without_javascript(
    api: AsyncTestClient[Any], stand_in: StripeStandIn, stripe_api: Recorder
) -> None:
    """Cancel opens a confirmation page, then posts; resume and the portal post at once;
    each answers with a redirect (the portal's to Stripe) and sends Stripe what the JSON API
    sends."""
    await _subscribe_by_forms(api, stand_in, "form-cancel@example.com")
    settings = await api.get("/settings", headers=HTML)
    assert '<form method="get" action="/settings/cancel"' in settings.text
    assert 'action="/settings/billing/portal"' in settings.text
    confirm = await api.get("/settings/cancel", headers=HTML)
    assert confirm.status_code == 200
    assert "Cancel your Starter plan?" in confirm.text
    assert "Your agent keeps working until" in confirm.text
    stripe_api.requests.clear()

    canceled = await api.post("/settings/billing/cancel",
                              data={"csrf_token": _form_token(confirm.text)},
                              follow_redirects=False)  # fmt: skip
    assert (canceled.status_code, canceled.headers["location"]) == (303, "/settings?done=canceled")
    assert stripe_api.requests[-1].form() == {"cancel_at_period_end": "true"}
    settings = await api.get("/settings?done=canceled", headers=HTML)
    assert "Your plan is canceled at the end of this billing period." in settings.text
    assert 'action="/settings/billing/resume"' in settings.text
    gone = await api.get("/settings/cancel", follow_redirects=False)
    assert (gone.status_code, gone.headers["location"]) == (303, "/settings")

    resumed = await api.post("/settings/billing/resume",
                             data={"csrf_token": _form_token(settings.text)},
                             follow_redirects=False)  # fmt: skip
    assert (resumed.status_code, resumed.headers["location"]) == (303, "/settings?done=resumed")
    assert stripe_api.requests[-1].form() == {"cancel_at_period_end": "false"}

    portal = await api.post("/settings/billing/portal",
                            data={"csrf_token": _form_token(settings.text)},
                            follow_redirects=False)  # fmt: skip
    assert portal.status_code == 303
    assert portal.headers["location"] == "https://billing.stripe.com/p/session/bps_rec"
    assert "https://billing.stripe.com" in portal.headers.get("content-security-policy", "") or (
        "https://billing.stripe.com" in settings.headers["content-security-policy"]
    )


async def test_billing_forms_without_a_valid_token_change_nothing(
    api: AsyncTestClient[Any], stand_in: StripeStandIn, stripe_api: Recorder
) -> None:
    """A forged or expired form (no CSRF token, or another one) is sent to log in again and
    never reaches Stripe."""
    await _subscribe_by_forms(api, stand_in, "form-forged@example.com")
    stripe_api.requests.clear()
    for path in (
        "/settings/billing/cancel",
        "/settings/billing/resume",
        "/settings/billing/portal",
    ):
        for data in ({}, {"csrf_token": "forged"}):
            refused = await api.post(path, data=data, follow_redirects=False)
            assert refused.status_code == 303, path
            assert refused.headers["location"].startswith("/login"), path
    assert stripe_api.requests == []
    assert stand_in.cancel_at_period_end is False


async def test_a_billing_form_that_stripe_refuses_shows_the_failure_in_the_billing_panel(
    api: AsyncTestClient[Any], stand_in: StripeStandIn, stripe_api: Recorder
) -> None:
    """When Stripe fails, the settings page comes back with the failure in words in the
    Billing panel (not hidden, not a bare error page) and the plan unchanged."""
    await _subscribe_by_forms(api, stand_in, "form-refused@example.com")
    settings = await api.get("/settings", headers=HTML)
    stripe_api.status = 400
    refused = await api.post("/settings/billing/cancel",
                             data={"csrf_token": _form_token(settings.text)},
                             follow_redirects=False)  # fmt: skip
    stripe_api.status = 200
    assert refused.status_code == 502
    panel = re.search(r'<div class="form-error" id="billing-error" role="alert"\s*>([^<]+)</div>',
                      refused.text)  # fmt: skip
    assert panel, "the failure is shown, not hidden"
    assert "Stripe" in panel.group(1) or "payment" in panel.group(1).lower()
    assert (await api.get("/api/v1/billing")).json()["cancel_at_period_end"] is False
