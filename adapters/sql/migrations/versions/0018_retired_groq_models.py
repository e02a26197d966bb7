"""Move saved Groq keys off the models Groq retired: ``llama-3.3-70b-versatile`` (shut down
on 2026-08-16) and ``moonshotai/kimi-k2-instruct`` become ``openai/gpt-oss-120b``, as
OpenClaw's own doctor migrates them (OpenClaw 2026.9.6, ``docs/providers/groq.md``). The
catalog no longer lists them, so without this a customer's config could not be rendered
until they chose a model again. The downgrade changes nothing: the earlier choice is not
kept, and the new model is valid at every revision.

Revision ID: 0018_retired_groq_models
Revises: 0017_ledger_batches
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_retired_groq_models"
down_revision = "0017_ledger_batches"
branch_labels = None
depends_on = None

REPLACEMENTS = {
    "llama-3.3-70b-versatile": "openai/gpt-oss-120b",
    "moonshotai/kimi-k2-instruct": "openai/gpt-oss-120b",
}


def upgrade() -> None:
    for retired, current in REPLACEMENTS.items():
        op.execute(
            sa.text(
                "UPDATE credentials SET model_preference = :current"
                " WHERE provider = 'groq' AND model_preference = :retired"
            ).bindparams(current=current, retired=retired)
        )


def downgrade() -> None:
    """Nothing to undo: the replacement is a valid Groq model at every revision."""
