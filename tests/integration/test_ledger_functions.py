"""The ledger's SQL has one home: every PL/pgSQL function PostgreSQL runs is the text of its
``adapters/sql/functions/*.sql`` file, and no older signature survives (issue #14)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from adapters.sql.database import upgrade
from adapters.sql.functions import FUNCTION_NAMES, function_sql
from adapters.sql.urls import sync_url
from tests.support import postgres

pytestmark = pytest.mark.integration

OTHER_FUNCTIONS = ("tk_enqueue_notification", "tk_audit_log_append_only")
"""Not the ledger's: the outbox's enqueue (revision 0008, which ``tk_admit`` calls to write
the thresholds it crosses) and the audit log's guard trigger (revision 0011)."""

_BODY = re.compile(r"\$(?:function)?\$(.*)\$(?:function)?\$", re.DOTALL)
_HEAD = re.compile(
    r"CREATE (?:OR REPLACE )?FUNCTION (?:public\.)?(\w+)\((.*?)\)\s*(?:RETURNS|LANGUAGE)", re.DOTALL
)


@pytest.fixture(scope="module")
def definitions() -> Iterator[dict[str, list[str]]]:
    """Every ``tk_`` function's ``pg_get_functiondef`` in a freshly migrated database."""
    with postgres.fresh_database("ledger_functions") as url:
        upgrade(url)
        engine = sa.create_engine(sync_url(url), poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p"
                        " JOIN pg_namespace n ON n.oid = p.pronamespace"
                        " WHERE n.nspname = 'public' AND p.proname LIKE 'tk\\_%'"
                    )
                ).all()
        finally:
            engine.dispose()
    found: dict[str, list[str]] = {}
    for name, definition in rows:
        found.setdefault(name, []).append(definition)
    yield found


def _words(text: str) -> list[str]:
    """Parameters as words, with the type aliases PostgreSQL prints in full."""
    text = re.sub(r"\btimestamptz\b", "timestamp with time zone", text.lower())
    return re.sub(r"\s+", " ", text).replace(" ,", ",").strip().split(" ")


def test_each_function_is_defined_once_and_only_those_in_the_files_exist(
    definitions: dict[str, list[str]],
) -> None:
    """The 9-, 10-, 12- and 13-argument signatures of revisions 0004–0006 are gone."""
    assert sorted(definitions) == sorted(FUNCTION_NAMES + OTHER_FUNCTIONS)
    assert all(len(found) == 1 for found in definitions.values()), definitions.keys()


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_the_database_runs_exactly_the_sql_file(
    definitions: dict[str, list[str]], name: str
) -> None:
    source = function_sql(name)
    (stored,) = definitions[name]
    source_body = _BODY.search(source)
    stored_body = _BODY.search(stored)
    assert source_body is not None and stored_body is not None
    assert stored_body.group(1) == source_body.group(1)  # the body, byte for byte
    source_head, stored_head = _HEAD.search(source), _HEAD.search(stored)
    assert source_head is not None and stored_head is not None
    assert stored_head.group(1) == source_head.group(1) == name
    # the parameters as PostgreSQL prints them (argument names, modes and types)
    assert _words(stored_head.group(2)) == _words(source_head.group(2))
