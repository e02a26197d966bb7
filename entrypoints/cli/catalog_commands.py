"""``tierkeeper catalog``: print the tier catalog as a table."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from domain.welcome import format_price
from entrypoints.bootstrap import build_catalog
from entrypoints.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("catalog", help="print the tiers, prices, caps and models")
    parser.set_defaults(handler=show_catalog)


def show_catalog(args: argparse.Namespace) -> int:
    catalog = build_catalog(Settings.from_environ())
    table = Table(title="tierkeeper tiers")
    for column in (
        "id",
        "name",
        "price",
        "primary model",
        "fallbacks",
        "msgs/day",
        "tokens/period",
    ):
        table.add_column(column)
    for tier in catalog.tiers:
        table.add_row(
            tier.id,
            tier.name,
            f"{format_price(tier.price.amount_cents, tier.price.currency)}/{tier.price.interval}",
            tier.primary_model or "tenant's own",
            ", ".join(tier.fallback_models) or "starter models (platform)",
            str(tier.messages_per_day),
            f"{tier.tokens_per_period:,}" if tier.tokens_per_period is not None else "no limit",
        )
    Console().print(table)
    return 0
