"""``SubscriptionCanceler`` on Stripe: cancel a subscription at once (account deletion), no
proration invoice. Runs the synchronous SDK in a worker thread."""

from __future__ import annotations

import asyncio

import attrs
import stripe

from domain.errors import PaymentProviderError


@attrs.frozen
class StripeSubscriptionCanceler:
    client: stripe.StripeClient

    async def cancel_now(self, subscription_id: str) -> None:
        """An already canceled or unknown subscription counts as canceled: there is nothing
        left to bill."""
        try:
            await asyncio.to_thread(self.client.v1.subscriptions.cancel, subscription_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404 or exc.code == "resource_missing":
                return
            raise PaymentProviderError(_describe(exc)) from exc
        except stripe.StripeError as exc:
            raise PaymentProviderError(_describe(exc)) from exc


def _describe(exc: stripe.StripeError) -> str:
    status = f" (HTTP {exc.http_status})" if exc.http_status else ""
    return f"the payment provider did not cancel the subscription{status}; try again later"
