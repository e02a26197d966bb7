"""``tierkeeper db upgrade|downgrade|current``: Alembic migrations of the configured database
(``TIERKEEPER_DATABASE_URL``; the embedded SQLite file by default)."""

from __future__ import annotations

import argparse

import sqlalchemy as sa

from entrypoints.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("db", help="database schema migrations")
    commands = parser.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    up = commands.add_parser("upgrade", help="migrate the schema to a revision (default: newest)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(handler=upgrade_database)
    down = commands.add_parser("downgrade", help="migrate the schema back to a revision")
    down.add_argument("revision", help="target revision id, or 'base' for an empty database")
    down.set_defaults(handler=downgrade_database)
    current = commands.add_parser("current", help="print the schema's current revision")
    current.set_defaults(handler=show_current)


def _where(url: str) -> str:
    """The database URL without its password, for messages."""
    return sa.make_url(url).render_as_string(hide_password=True)


def upgrade_database(args: argparse.Namespace) -> int:
    from adapters.sql.database import current_revision, upgrade

    url = Settings.from_environ().database_url
    upgrade(url, args.revision)
    print(f"{_where(url)} is at revision {current_revision(url)}")
    return 0


def downgrade_database(args: argparse.Namespace) -> int:
    from adapters.sql.database import current_revision, downgrade

    url = Settings.from_environ().database_url
    try:
        downgrade(url, args.revision)
    except RuntimeError as refused:
        print(f"error: {refused}")
        return 1
    print(f"{_where(url)} is at revision {current_revision(url) or 'base (empty)'}")
    return 0


def show_current(args: argparse.Namespace) -> int:
    from adapters.sql.database import current_revision, head_revision

    url = Settings.from_environ().database_url
    revision = current_revision(url)
    state = "up to date" if revision == head_revision() else f"newest is {head_revision()}"
    print(f"{_where(url)}: {revision or 'empty'} ({state})")
    return 0
