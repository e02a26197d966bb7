"""Billing adapters: Stripe Checkout and Stripe webhooks."""
