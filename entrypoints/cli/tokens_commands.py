"""``tierkeeper tokens create --service NAME``: a bearer token for a service (the gateway).
The token is shown once, alone on the last line; only its hash is stored.

``tierkeeper tokens list``: the live service tokens (id, name, created, last used), never the
tokens themselves. ``tierkeeper tokens revoke ID_OR_NAME``: revoke one token by its id, or
every token of a service by its name; gateways holding it are refused within seconds."""

from __future__ import annotations

import argparse
import asyncio
import sys

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
    listing = commands.add_parser("list", help="list the live service tokens (never the tokens)")
    listing.set_defaults(handler=list_tokens)
    revoke = commands.add_parser("revoke", help="revoke a service token by id, or by name")
    revoke.add_argument("target", metavar="ID_OR_NAME", help="a token id or a service name")
    revoke.set_defaults(handler=revoke_tokens)


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


def list_tokens(args: argparse.Namespace) -> int:
    settings = Settings.from_environ()
    migrate_embedded(settings)
    rows = asyncio.run(_list(settings))
    print(f"{'ID':<18}{'NAME':<24}{'CREATED':<27}LAST USED")
    for row in rows:
        print(f"{row[0]:<18}{row[1]:<24}{row[2]:<27}{row[3]}")
    return 0


async def _list(settings: Settings) -> list[tuple[str, str, str, str]]:
    services = await build_services(settings)
    try:
        tokens = await services.accounts.service_tokens()
    finally:
        await services.close()
    return [
        (
            t.id,
            t.name,
            t.created_at.isoformat(timespec="seconds"),
            t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never",
        )
        for t in tokens
    ]


def revoke_tokens(args: argparse.Namespace) -> int:
    settings = Settings.from_environ()
    migrate_embedded(settings)
    count = asyncio.run(_revoke(settings, args.target))
    if count == 0:
        print(f"error: no live service token has the id or name {args.target!r}", file=sys.stderr)
        return 1
    print(f"revoked {count} service token(s)")
    return 0


async def _revoke(settings: Settings, target: str) -> int:
    services = await build_services(settings)
    try:
        return await services.accounts.revoke_service_tokens(target)
    finally:
        await services.close()
