"""Rename the legacy tiers (``basic`` → ``starter``, ``plus`` → ``premium``) and allow ``byok``.

Downgrade maps the names back and REFUSES while any tenant is on ``byok``: the legacy schema
has no tier that means "bring your own key", and silently moving such tenants to ``basic``
would change what they pay for and which keys serve them. Move them off ``byok`` first.

Revision ID: 0002_tier_ids
Revises: 0001_legacy_tenants
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_tier_ids"
down_revision = "0001_legacy_tenants"
branch_labels = None
depends_on = None

LEGACY_TIERS = "tier IN ('basic', 'plus')"
CURRENT_TIERS = "tier IN ('starter', 'premium', 'byok')"
FORWARD = {"basic": "starter", "plus": "premium"}


def _rename(*pairs: tuple[str, str]) -> None:
    tenants = sa.table("tenants", sa.column("tier", sa.String))
    for old, new in pairs:
        op.execute(tenants.update().where(tenants.c.tier == old).values(tier=new))


def upgrade() -> None:
    with op.batch_alter_table("tenants", recreate="auto") as batch:
        batch.drop_constraint("ck_tenants_tier", type_="check")
    _rename(*FORWARD.items())
    with op.batch_alter_table("tenants", recreate="auto") as batch:
        batch.create_check_constraint("ck_tenants_tier", CURRENT_TIERS)


def downgrade() -> None:
    byok = op.get_bind().execute(sa.text("SELECT count(*) FROM tenants WHERE tier = 'byok'"))
    count = byok.scalar_one()
    if count:
        raise RuntimeError(
            f"cannot downgrade below 0002_tier_ids: {count} tenant(s) are on the 'byok' tier, "
            "which the legacy schema cannot express; move them to another tier first"
        )
    with op.batch_alter_table("tenants", recreate="auto") as batch:
        batch.drop_constraint("ck_tenants_tier", type_="check")
    _rename(*((new, old) for old, new in FORWARD.items()))
    with op.batch_alter_table("tenants", recreate="auto") as batch:
        batch.create_check_constraint("ck_tenants_tier", LEGACY_TIERS)
