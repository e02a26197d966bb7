"""``tierkeeper`` command line: each command group lives in its own module with a
``register(subparsers)`` function; handlers return the process exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from domain.errors import DomainError
from entrypoints.cli import (
    audit_commands,
    catalog_commands,
    configs_commands,
    db_commands,
    keys_commands,
    notifications_commands,
    serve_commands,
    tenants_commands,
    tokens_commands,
    usage_commands,
)

COMMAND_MODULES = (
    catalog_commands,
    db_commands,
    configs_commands,
    keys_commands,
    usage_commands,
    serve_commands,
    tokens_commands,
    tenants_commands,
    notifications_commands,
    audit_commands,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tierkeeper", description="Control plane for per-tenant OpenClaw gateways."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except DomainError as exc:
        field = getattr(exc, "field", "")
        where = f" ({field})" if field else ""
        print(f"error: {exc.detail}{where}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
