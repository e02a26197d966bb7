"""Billing: checkout for a tier, and the payment provider's webhook."""

from __future__ import annotations

from litestar import Controller


class BillingController(Controller):
    path = "/api/v1/billing"
    tags = ("billing",)
