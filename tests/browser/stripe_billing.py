"""The rest of Stripe the billing pages reach, for the browser tests' Stripe stand-in:
customers, one subscription per customer (read and updated: price, cancel at period end),
and Billing Portal sessions with a page to land on. Checkout Sessions stay in ``harness``.

``subscribe`` is what a completed Checkout leaves behind at Stripe; the test then sends the
app the signed webhooks Stripe would (``signed_event``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
from typing import Any

PERIOD_START = 1_796_083_200  # 2026-12-01T00:00:00Z
PERIOD_END = 1_798_761_600  # 2027-01-01T00:00:00Z


class StripeBilling:
    def __init__(self) -> None:
        self.customers: list[dict[str, str]] = []
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.updates: list[tuple[str, dict[str, str]]] = []
        self.portals: list[dict[str, str]] = []

    def subscribe(self, customer: str, price: str, tenant_id: str) -> dict[str, Any]:
        subscription_id = f"sub_browser_{len(self.subscriptions) + 1}"
        self.subscriptions[subscription_id] = {
            "id": subscription_id, "object": "subscription", "customer": customer,
            "status": "active", "cancel_at_period_end": False,
            "metadata": {"tenant_id": tenant_id},
            "items": {"object": "list", "data": [{
                "id": f"si_{subscription_id}", "object": "subscription_item",
                "price": {"id": price, "object": "price"},
                "current_period_start": PERIOD_START, "current_period_end": PERIOD_END,
            }]},
        }  # fmt: skip
        return self.subscriptions[subscription_id]

    def answer(self, method: str, path: str, form: dict[str, str], base: str) -> Any:
        """Stripe's answer, or None for a path this stand-in does not serve."""
        if method == "POST" and path == "/v1/customers":
            self.customers.append(form)
            return {"id": f"cus_browser_{len(self.customers)}", "object": "customer"}
        if method == "POST" and path == "/v1/billing_portal/sessions":
            self.portals.append(form)
            session = f"bps_browser_{len(self.portals)}"
            return {"id": session, "object": "billing_portal.session",
                    "url": f"{base}/portal/{session}"}  # fmt: skip
        if path.startswith("/v1/subscriptions/"):
            subscription = self.subscriptions.get(path.rsplit("/", 1)[1])
            if subscription is None:
                return None
            if method == "POST":
                self.updates.append((subscription["id"], form))
                if "items[0][plan]" in form:
                    subscription["items"]["data"][0]["price"]["id"] = form["items[0][plan]"]
                if "cancel_at_period_end" in form:
                    subscription["cancel_at_period_end"] = form["cancel_at_period_end"] == "true"
            return subscription
        return None


def signed_event(event_type: str, obj: dict[str, Any], secret: str) -> tuple[bytes, str]:
    body = json.dumps({"id": f"evt_browser_{time.monotonic_ns()}", "object": "event",
                       "type": event_type, "created": int(time.time()),
                       "data": {"object": obj}}).encode()  # fmt: skip
    t = int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={t},v1={mac}"


def send_webhook(app_url: str, event_type: str, obj: dict[str, Any], secret: str) -> int:
    body, signature = signed_event(event_type, obj, secret)
    request = urllib.request.Request(  # noqa: S310 - loopback only
        app_url + "/api/v1/billing/webhook", data=body, method="POST",
        headers={"Content-Type": "application/json", "Stripe-Signature": signature},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        status: int = response.status
        return status
