"""``tierkeeper tokens create --service NAME``: a bearer token for a service (the gateway).
The token is shown once, alone on the last line; only its hash is stored."""

from __future__ import annotations

import argparse
import asyncio

from entrypoints.bootstrap import build_services
from entrypoints.cli.operator import operator
from entrypoints.cli.serve_commands import migrate_embedded
from entrypoints.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("tokens", help="service bearer tokens")
    commands = parser.add_subparsers(dest="tokens_command", required=True, metavar="COMMAND")
    create = commands.add_parser("create", help="create a service token and print it once")
    create.add_argument("--service", required=True, metavar="NAME", help="the service's name")
    create.set_defaults(handler=create_token)


def create_token(args: argparse.Namespace) -> int:
    settings = Settings.from_environ()
    migrate_embedded(settings)
    token = asyncio.run(_create(settings, args.service))
    print(f"service token for {args.service!r} (shown once; store it in the gateway's secrets):")
    print(token)
    return 0


async def _create(settings: Settings, service: str) -> str:
    services = await build_services(settings)
    try:
        return (await services.accounts.create_service_token(service, operator())).reveal()
    finally:
        await services.close()
