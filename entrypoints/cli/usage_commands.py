"""``tierkeeper usage report --period YYYY-MM [--csv]``: per tenant, the month's messages
(admitted, settled and expired apart), tokens by model and credential, model cost at catalog
rates, revenue from the invoices paid in the month and the margin, with tenants working
without payment flagged; a table on the terminal, CSV on request."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from domain.billing import TenantUsage, report_period
from domain.use_cases.reports import PeriodReport, UsageReport
from entrypoints import bootstrap
from entrypoints.bootstrap import Services
from entrypoints.cli.serve_commands import migrate_embedded
from entrypoints.settings import Settings

EXIT_OK = 0
MODEL_COST_PLACES = Decimal("0.000001")

ServicesBuilder = Callable[[Settings], Awaitable[Services]]

CSV_COLUMNS = (
    "period",
    "tenant_id",
    "tier",
    "status",
    "row",
    "model",
    "credential",
    "messages",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "tokens",
    "model_cost_usd",
    "revenue_usd",
    "margin_usd",
    "admitted",
    "settled",
    "expired",
    "activated_without_payment",
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("usage", help="usage, model cost, revenue and margin")
    commands = parser.add_subparsers(dest="usage_command", required=True, metavar="COMMAND")
    report = commands.add_parser(
        "report",
        help="per tenant for one month: messages, tokens by model and credential, model cost,"
        " revenue, margin",
    )
    report.add_argument(
        "--period", required=True, metavar="YYYY-MM", help="the calendar month (UTC) to report"
    )
    report.add_argument(
        "--csv", dest="as_csv", action="store_true", help="write CSV to stdout instead of a table"
    )
    report.set_defaults(handler=report_command)
    sweep = commands.add_parser(
        "sweep", help="expire reservations never settled (15 minutes after admission)"
    )
    sweep.set_defaults(handler=sweep_command)


def sweep_command(args: argparse.Namespace) -> int:
    """Reservations never settled leave the counters for good (``serve`` also runs this on
    a timer); prints how many expired."""
    settings = Settings.from_environ()
    migrate_embedded(settings)
    return asyncio.run(_sweep(bootstrap.build_services, settings))


async def _sweep(builder: ServicesBuilder, settings: Settings) -> int:
    services = await builder(settings)
    try:
        expired = await services.metering.sweep()
    finally:
        await services.close()
    print(f"{expired} reservation(s) expired")
    return EXIT_OK


def report_command(args: argparse.Namespace) -> int:
    report_period(args.period)  # a bad period is refused before the database is opened
    settings = Settings.from_environ()
    migrate_embedded(settings)
    return asyncio.run(_run(bootstrap.build_services, settings, args.period, args.as_csv))


async def _run(builder: ServicesBuilder, settings: Settings, period: str, as_csv: bool) -> int:
    services = await builder(settings)
    try:
        report = await usage_report(services).for_period(period)
    finally:
        await services.close()
    if as_csv:
        write_csv(report, sys.stdout)
    else:
        print_table(report, Console())
    return EXIT_OK


def usage_report(services: Services) -> UsageReport:
    ports = services.ports
    assert ports.paid_invoices is not None, "the composition root always provides them"
    return UsageReport(
        services.catalog, ports.tenants, ports.ledger, ports.paid_invoices, ports.message_counts
    )


def write_csv(report: PeriodReport, out: TextIO) -> None:
    """One ``model`` row per tenant, model and credential (exact model cost), then one
    ``tenant`` row with the tenant's totals, revenue and margin in whole cents."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for tenant in report.tenants:
        head = [report.period.name, tenant.tenant_id, tenant.tier or "",
                tenant.status.value if tenant.status else ""]  # fmt: skip
        for usage in tenant.by_model:
            cost = "" if usage.cost_usd is None else str(usage.cost_usd.quantize(MODEL_COST_PLACES))
            writer.writerow(
                [*head, "model", usage.model, usage.credential.value, usage.messages,
                 usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.tokens(),
                 cost, "", "", "", "", "", ""]
            )  # fmt: skip
        writer.writerow(
            [*head, "tenant", "", "", tenant.messages(),
             sum(u.input_tokens for u in tenant.by_model),
             sum(u.output_tokens for u in tenant.by_model),
             sum(u.cache_read_tokens for u in tenant.by_model), tenant.tokens(),
             _dollars(tenant.model_cost_cents), _dollars(tenant.revenue_cents),
             _dollars(tenant.margin_cents), tenant.counts.admitted, tenant.counts.settled,
             tenant.counts.expired, "yes" if tenant.activated_without_payment else "no"]
        )  # fmt: skip


def print_table(report: PeriodReport, console: Console) -> None:
    table = Table(
        title=f"tierkeeper usage {report.period.name} (UTC)", show_footer=True, show_lines=True
    )
    table.add_column("tenant", footer="total", no_wrap=True)
    table.add_column("tier")
    table.add_column("status")
    table.add_column("messages", justify="right", footer=f"{report.messages():,}")
    table.add_column("admitted / settled / expired", justify="right")
    table.add_column("tokens by model (credential)")
    table.add_column("model cost", justify="right", footer=_money(report.model_cost_cents()))
    table.add_column("revenue (paid)", justify="right", footer=_money(report.revenue_cents()))
    table.add_column("margin", justify="right", footer=_money(report.margin_cents()))
    for tenant in report.tenants:
        table.add_row(
            escape(tenant.tenant_id),
            tenant.tier or "-",
            tenant.status.value if tenant.status else "-",
            f"{tenant.messages():,}",
            f"{tenant.counts.admitted:,} / {tenant.counts.settled:,} / {tenant.counts.expired:,}",
            _usage_lines(tenant),
            _money(tenant.model_cost_cents),
            _money(tenant.revenue_cents) + (" [red]unpaid[/]" if tenant.activated_without_payment
                                            else ""),
            _money(tenant.margin_cents),
        )  # fmt: skip
    console.print(table)
    unpaid = report.unpaid_activations()
    if unpaid:
        names = ", ".join(escape(t.tenant_id) for t in unpaid)
        console.print(
            f"[red]{len(unpaid)} tenant(s) work as paying ones without a subscription or a paid"
            f" invoice (activated by an operator?): {names}[/]"
        )
    unpriced = sum(t.unpriced_messages for t in report.tenants)
    if unpriced:
        console.print(
            f"[yellow]{unpriced} message(s) on models without catalog rates are not in the "
            "model cost[/]"
        )


def _usage_lines(tenant: TenantUsage) -> str:
    if not tenant.by_model:
        return "-"
    return "\n".join(
        f"{escape(u.model)} ({u.credential.value}): {u.tokens():,}"
        f" [dim](in {u.input_tokens:,} / out {u.output_tokens:,}"
        f" / cache {u.cache_read_tokens:,})[/]"
        for u in tenant.by_model
    )


def _dollars(cents: int) -> str:
    return str(Decimal(cents).scaleb(-2).quantize(Decimal("0.01")))


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"
