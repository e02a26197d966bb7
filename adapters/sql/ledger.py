"""What both SQL ledgers share: reservation ids, and usage records read by column name.

The ledgers themselves: ``postgres_ledger`` (one statement per call, the PL/pgSQL of
``adapters/sql/functions``) and ``sqlite_ledger`` (the domain rule itself inside one
``BEGIN IMMEDIATE`` transaction). ADR 0003 explains both.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.ids import MessageId, ModelRef, ReservationId, TenantId
from domain.metering import Anomaly, Credential, OfferedRoute, SettlementTerms, UsageRecord

RECORD_COLUMNS = (
    "tenant_id, message_id, model, credential, input_tokens, output_tokens,"
    " cache_read_tokens, weighted_tokens, settled_at"
)


def reservation_id(tenant_id: TenantId, message_id: MessageId) -> ReservationId:
    return ReservationId(f"{tenant_id}:{message_id}")


def models_text(models: tuple[ModelRef, ...]) -> str:
    """A route's model refs as stored with its reservation (refs hold no spaces)."""
    return " ".join(models)


def offered_route(row: Mapping[str, Any]) -> OfferedRoute:
    """The route a reservation row kept."""
    text = row["offered_models"] or ""
    return OfferedRoute(
        models=tuple(ModelRef(m) for m in text.split(" ") if m),
        tenant_key_model=ModelRef(row["tenant_key_model"]) if row["tenant_key_model"] else None,
        max_weight=Decimal(str(row["max_weight"])),
    )


def stored_terms(counted_as: str, weighted: int, anomaly: str | None) -> SettlementTerms:
    """The terms a settlement row was counted on."""
    return SettlementTerms(
        Credential(counted_as), int(weighted), Anomaly(anomaly) if anomaly else None
    )


def usage_record(row: Mapping[str, Any], at: datetime) -> UsageRecord:
    return UsageRecord(
        tenant_id=TenantId(row["tenant_id"]),
        message_id=MessageId(row["message_id"]),
        model=ModelRef(row["model"]),
        credential=Credential(row["credential"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        cache_read_tokens=int(row["cache_read_tokens"]),
        weighted_tokens=int(row["weighted_tokens"]),
        at=at,
    )
