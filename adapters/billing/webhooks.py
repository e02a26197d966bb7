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

from domain.billing import EventKind, MalformedEvent, SubscriptionEvent
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
    """The event tierkeeper acts on, or None for another type. A handled event whose fields
    are not what Stripe sends (no id, a ``created`` or period that is not a Unix time, an id
    that is not a string, an object that is not an object) raises ``MalformedEvent`` naming
    the field: nothing of it is applied."""
    event_type = event.get("type")
    kind = EVENT_KINDS.get(event_type) if isinstance(event_type, str) else None
    if kind is None:
        return None
    obj = _object(event.get("data"))
    base: dict[str, Any] = {
        "event_id": _required_id(event.get("id"), "id"),
        "event_type": event_type,
        "kind": kind,
        "occurred_at": _required_instant(event.get("created"), "created"),
    }
    if kind is EventKind.CHECKOUT_COMPLETED:
        if obj.get("mode") not in (None, "subscription"):
            return None
        return SubscriptionEvent(**base, **_from_checkout(obj))
    if kind in (EventKind.INVOICE_PAID, EventKind.INVOICE_PAYMENT_FAILED):
        return SubscriptionEvent(**base, **_from_invoice(obj))
    return SubscriptionEvent(**base, **_from_subscription(obj))


def _object(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping) or not isinstance(data.get("object"), Mapping):
        raise MalformedEvent("the event carries no object under data.object", field="data.object")
    obj: Mapping[str, Any] = data["object"]
    return obj


def _from_checkout(session: Mapping[str, Any]) -> dict[str, Any]:
    metadata = _metadata(session, "metadata")
    paid = session.get("payment_status") in PAID_CHECKOUT
    reference = _text(session, "client_reference_id") or _text(metadata, "tenant_id")
    return {
        "customer_id": _id(session.get("customer"), "customer"),
        "subscription_id": _id(session.get("subscription"), "subscription"),
        "tenant_id": _tenant(reference),
        "tier_hint": _text(metadata, "tier"),
        "provider_status": "active" if paid else None,
    }


def _from_subscription(sub: Mapping[str, Any]) -> dict[str, Any]:
    items = _mapping(sub, "items").get("data")
    if items is not None and not isinstance(items, list):
        raise MalformedEvent("the subscription's items.data is not a list", field="items.data")
    item = items[0] if items else {}
    if not isinstance(item, Mapping):
        raise MalformedEvent("the subscription's first item is not an object", field="items.data")
    price = (
        _id(item.get("price"), "items.data.price")
        or _id(item.get("plan"), "items.data.plan")
        or _id(sub.get("plan"), "plan")
    )
    start = _instant(item, "current_period_start") or _instant(sub, "current_period_start")
    end = _instant(item, "current_period_end") or _instant(sub, "current_period_end")
    cancel_at_end = sub.get("cancel_at_period_end")
    if cancel_at_end is not None and not isinstance(cancel_at_end, bool):
        raise MalformedEvent(
            "cancel_at_period_end is not true or false", field="cancel_at_period_end"
        )
    return {
        "customer_id": _id(sub.get("customer"), "customer"),
        "subscription_id": _id(sub.get("id"), "id"),
        "price_id": price,
        "provider_status": _text(sub, "status"),
        "tenant_id": _tenant(_text(_metadata(sub, "metadata"), "tenant_id")),
        "billing_anchor": _instant(sub, "billing_cycle_anchor") or start,
        "current_period_start": start,
        "current_period_end": end,
        "cancel_at_period_end": bool(cancel_at_end),
    }


def _from_invoice(invoice: Mapping[str, Any]) -> dict[str, Any]:
    details = _mapping(_mapping(invoice, "parent"), "subscription_details") or _mapping(
        invoice, "subscription_details"
    )
    subscription = _id(details.get("subscription"), "parent.subscription_details.subscription")
    tenant = _text(_metadata(details, "metadata"), "tenant_id") or _text(
        _metadata(invoice, "metadata"), "tenant_id"
    )
    amount = invoice.get("amount_paid")
    if amount is not None and (type(amount) is not int or amount < 0):
        raise MalformedEvent("amount_paid is not a whole number of cents", field="amount_paid")
    return {
        "customer_id": _id(invoice.get("customer"), "customer"),
        "subscription_id": subscription or _id(invoice.get("subscription"), "subscription"),
        "tenant_id": _tenant(tenant),
        "invoice_id": _id(invoice.get("id"), "id"),
        "amount_paid_cents": amount,
        "currency": _text(invoice, "currency"),
    }


def _mapping(container: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """An optional nested object: absent or null reads as empty."""
    value = container.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MalformedEvent(f"{name} is not an object", field=name)
    return value


def _metadata(container: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    return _mapping(container, name)


def _id(value: Any, field: str) -> str | None:
    """An id, whether Stripe sent it bare or as an expanded object; absent is None."""
    if isinstance(value, Mapping):
        value = value.get("id")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedEvent(f"{field} is not an id", field=field)
    return value


def _required_id(value: Any, field: str) -> str:
    found = _id(value, field)
    if found is None:
        raise MalformedEvent(f"the event has no {field}", field=field)
    return found


def _text(container: Mapping[str, Any], name: str) -> str | None:
    value = container.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedEvent(f"{name} is not text", field=name)
    return value


def _tenant(value: str | None) -> TenantId | None:
    return TenantId(value) if value is not None else None


LATEST_UNIX_TIME = 253_402_300_799
"""9999-12-31T23:59:59Z: the last instant a datetime holds."""


def _instant(container: Mapping[str, Any], name: str) -> datetime | None:
    """An optional Unix time (whole seconds); anything else names the field."""
    value = container.get(name)
    if value is None:
        return None
    return _required_instant(value, name)


def _required_instant(value: Any, field: str) -> datetime:
    if type(value) is not int or not 0 <= value <= LATEST_UNIX_TIME:
        raise MalformedEvent(f"{field} is not a Unix time in seconds", field=field)
    return datetime.fromtimestamp(value, UTC)
