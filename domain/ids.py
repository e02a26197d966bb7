"""Identifier types: distinct names for strings that must never be swapped."""

from typing import NewType

TenantId = NewType("TenantId", str)
UserId = NewType("UserId", str)
MessageId = NewType("MessageId", str)
ReservationId = NewType("ReservationId", str)
TierId = NewType("TierId", str)
ProviderId = NewType("ProviderId", str)
ModelRef = NewType("ModelRef", str)
"""A model named as OpenClaw names it: ``provider/model``, split on the first slash."""
