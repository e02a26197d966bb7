"""The customer's usage history: by day or by model, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import Provide

from domain.errors import DomainError
from domain.ids import TenantId
from domain.usage_history import HistoryGroup, HistoryRow, parse_day, parse_group
from domain.use_cases.usage_history import UsageHistory, UsageHistoryView
from entrypoints.bootstrap import Services
from entrypoints.http.auth import (
    CUSTOMER_SECURITY,
    CustomerDep,
    ServicesDep,
    provide_customer,
    tenant_of,
)
from entrypoints.http.openapi import CUSTOMER_ERRORS, errors

CSV_MEDIA_TYPE = "text/csv"
CSV_COLUMNS = ("messages", "tokens", "platform_tokens", "own_key_tokens")


class HistoryRowOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    day: str | None = None
    model: str | None = None
    messages: int
    tokens: int
    platform_tokens: int
    own_key_tokens: int


class HistoryOut(msgspec.Struct, kw_only=True):
    rows: list[HistoryRowOut]


def history_of(services: Services) -> UsageHistory:
    if services.usage_history is None:
        raise DomainError("usage history is not available", code="internal_error")
    return services.usage_history


def row_out(row: HistoryRow, group: HistoryGroup) -> HistoryRowOut:
    return HistoryRowOut(
        day=row.key if group is HistoryGroup.DAY else None,
        model=row.key if group is HistoryGroup.MODEL else None,
        messages=row.messages,
        tokens=row.tokens(),
        platform_tokens=row.platform_tokens,
        own_key_tokens=row.own_key_tokens,
    )


def history_csv(view: UsageHistoryView) -> str:
    """A header line, then one line per row; a model id that starts like a formula is
    quoted with a leading apostrophe so a spreadsheet shows it as text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow((view.group.value, *CSV_COLUMNS))
    for row in view.rows:
        key = "'" + row.key if row.key[:1] in ("=", "+", "-", "@") else row.key
        writer.writerow((key, row.messages, row.tokens(), row.platform_tokens, row.own_key_tokens))
    return out.getvalue()


def wants_csv(request: Request[Any, Any, Any]) -> bool:
    if request.query_params.get("format", "").lower() == "csv":
        return True
    return CSV_MEDIA_TYPE in request.headers.get("accept", "").lower()


async def read_history(
    services: Services, customer_tenant: TenantId, params: dict[str, str]
) -> UsageHistoryView:
    """``from`` and ``to`` default to the last 30 local days ending today."""
    history = history_of(services)
    group = parse_group(params.get("group") or "day")
    today = await history.today(customer_tenant)
    last = parse_day(params["to"], "to") if params.get("to") else today
    if params.get("from"):
        first = parse_day(params["from"], "from")
    else:
        first = last.fromordinal(last.toordinal() - 29)
    return await history.history(customer_tenant, first, last, group)


class UsageHistoryController(Controller):
    path = "/api/v1/usage/history"
    tags = ("tenant",)
    dependencies = {"customer": Provide(provide_customer)}  # noqa: RUF012
    security = CUSTOMER_SECURITY

    @get("/", responses=errors(*CUSTOMER_ERRORS))
    async def history(
        self, request: Request[Any, Any, Any], customer: CustomerDep, services: ServicesDep
    ) -> Response[Any]:
        """Settled usage from ``from`` to ``to`` (local days, YYYY-MM-DD, at most 400 days;
        default the last 30) grouped by ``group=day|model``; CSV with ``Accept: text/csv``
        or ``format=csv``."""
        params = {k: request.query_params.get(k, "") for k in ("from", "to", "group")}
        view = await read_history(services, tenant_of(customer), params)
        if wants_csv(request):
            name = f"usage-{view.group.value}-{view.span.first}-{view.span.last}.csv"
            return Response(
                history_csv(view),
                media_type=CSV_MEDIA_TYPE,
                headers={
                    "content-disposition": f'attachment; filename="{name}"',
                    "cache-control": "no-store",
                },
            )
        return Response(
            HistoryOut(rows=[row_out(row, view.group) for row in view.rows]),
            headers={"cache-control": "no-store"},
        )
