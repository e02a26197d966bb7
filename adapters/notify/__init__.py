"""Adapters that carry notifications out: SMTP or ``.eml`` files, and customers' webhooks."""
