"""The ledger's PL/pgSQL, one ``.sql`` file per function: what PostgreSQL runs for admit
and settle lives here and nowhere else. Revision ``0007_limits`` creates the functions from
these files; a test compares each file with ``pg_get_functiondef`` of the database. A change
to a file needs a new revision that drops and creates the function again."""

from __future__ import annotations

from importlib.resources import files

FUNCTION_NAMES = (
    "tk_release_period",
    "tk_lock_period",
    "tk_admit",
    "tk_draw_lease",
    "tk_settle",
    "tk_release_expired",
    "tk_reserve_call",
    "tk_ledger_batch",
    "tk_release_held",
)
"""In creation order: each uses only those before it."""


def function_sql(name: str) -> str:
    """The ``CREATE FUNCTION`` statement of ``name``."""
    return (files(__package__) / f"{name}.sql").read_text(encoding="utf-8")
