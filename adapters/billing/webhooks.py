"""Stripe webhooks: verify the signature and its age, then turn the events tierkeeper acts on
into provider-neutral ``SubscriptionEvent`` values.

Payload shapes differ between Stripe API versions (a subscription's price under
``items.data[].price`` or the older ``plan``; its period on the item or the subscription; an
invoice's subscription under ``parent.subscription_details`` or the older ``subscription``);
the parser reads both.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import stripe

from domain.billing import EventKind, SubscriptionEvent
from domain.errors import InvalidSignature
from domain.ids import TenantId
from domain.secrets import Secret

DEFAULT_TOLERANCE_SECONDS = 300
"""How old a signature may be (Stripe's default): older ones are replays."""

EVENT_KINDS = {
    "checkout.session.completed": EventKind.CHECKOUT_COMPLETED,
    "customer.subscription.created": EventKind.SUBSCRIPTION_CREATED,
    "customer.subscription.updated": EventKind.SUBSCRIPTION_UPDATED,
    "customer.subscription.deleted": EventKind.SUBSCRIPTION_DELETED,
    "invoice.paid": EventKind.INVOICE_PAID,
    "invoice.payment_succeeded": EventKind.INVOICE_PAID,
    "invoice.payment_failed": EventKind.INVOICE_PAYMENT_FAILED,
}
"""``invoice.payment_succeeded`` accompanies ``invoice.paid`` for charged invoices (and is
the one older integrations and localstripe send); both mean the same and each event id is
applied once."""

PAID_CHECKOUT = frozenset({"paid", "no_payment_required"})


def verify_stripe_event(
    payload: bytes | str,
    signature_header: str | None,
    secret: Secret,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> dict[str, Any]:
    """The event as plain data, once its ``Stripe-Signature`` (HMAC-SHA256 of
    ``"{t}.{body}"``) matches the secret and ``t`` is within the tolerance."""
    try:
        event = stripe.Webhook.construct_event(
            payload, signature_header, secret.reveal(), tolerance=tolerance_seconds
        )
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature(f"Stripe signature rejected: {exc.user_message or exc}") from None
    except ValueError:
        raise InvalidSignature("the signed payload is not a JSON event") from None
    data: dict[str, Any] = event.to_dict()
    return data


def parse_stripe_event(
    payload: bytes | str,
    signature_header: str | None,
    secret: Secret,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> SubscriptionEvent | None:
    """Verify, then parse; None for an event type (or a non-subscription checkout) that
    tierkeeper does not act on. Raises ``InvalidSignature`` when verification fails."""
    return event_from_data(
        verify_stripe_event(payload, signature_header, secret, tolerance_seconds)
    )


@attrs.frozen
class StripeWebhookParser:
    """The webhook secret held once, for the HTTP layer: ``parse(body, header)``."""

    secret: Secret
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS

    def parse(self, payload: bytes | str, signature_header: str | None) -> SubscriptionEvent | None:
        return parse_stripe_event(payload, signature_header, self.secret, self.tolerance_seconds)


def event_from_data(event: Mapping[str, Any]) -> SubscriptionEvent | None:
    kind = EVENT_KINDS.get(str(event.get("type")))
    if kind is None:
        return None
    obj = _mapping(_mapping(event.get("data")).get("object"))
    base: dict[str, Any] = {
        "event_id": str(event["id"]),
        "event_type": str(event["type"]),
        "kind": kind,
        "occurred_at": _instant(event.get("created")),
    }
    if kind is EventKind.CHECKOUT_COMPLETED:
        if obj.get("mode") not in (None, "subscription"):
            return None
        return SubscriptionEvent(**base, **_from_checkout(obj))
    if kind in (EventKind.INVOICE_PAID, EventKind.INVOICE_PAYMENT_FAILED):
        return SubscriptionEvent(**base, **_from_invoice(obj))
    return SubscriptionEvent(**base, **_from_subscription(obj))


def _from_checkout(session: Mapping[str, Any]) -> dict[str, Any]:
    metadata = _mapping(session.get("metadata"))
    paid = session.get("payment_status") in PAID_CHECKOUT
    return {
        "customer_id": _id(session.get("customer")),
        "subscription_id": _id(session.get("subscription")),
        "tenant_id": _tenant(session.get("client_reference_id") or metadata.get("tenant_id")),
        "tier_hint": _text(metadata.get("tier")),
        "provider_status": "active" if paid else None,
    }


def _from_subscription(sub: Mapping[str, Any]) -> dict[str, Any]:
    items = _mapping(sub.get("items")).get("data") or []
    item = _mapping(items[0]) if items else {}
    price = _id(item.get("price")) or _id(item.get("plan")) or _id(sub.get("plan"))
    anchor = (
        sub.get("billing_cycle_anchor")
        or item.get("current_period_start")
        or sub.get("current_period_start")
    )
    return {
        "customer_id": _id(sub.get("customer")),
        "subscription_id": _id(sub.get("id")),
        "price_id": price,
        "provider_status": _text(sub.get("status")),
        "tenant_id": _tenant(_mapping(sub.get("metadata")).get("tenant_id")),
        "billing_anchor": _instant(anchor) if anchor else None,
    }


def _from_invoice(invoice: Mapping[str, Any]) -> dict[str, Any]:
    details = _mapping(
        _mapping(invoice.get("parent")).get("subscription_details")
        or invoice.get("subscription_details")
    )
    subscription = details.get("subscription") or invoice.get("subscription")
    tenant = _mapping(details.get("metadata")).get("tenant_id") or _mapping(
        invoice.get("metadata")
    ).get("tenant_id")
    return {
        "customer_id": _id(invoice.get("customer")),
        "subscription_id": _id(subscription),
        "tenant_id": _tenant(tenant),
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _id(value: Any) -> str | None:
    """An id, whether Stripe sent it bare or as an expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _tenant(value: Any) -> TenantId | None:
    text = _text(value)
    return TenantId(text) if text is not None else None


def _instant(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), UTC)
