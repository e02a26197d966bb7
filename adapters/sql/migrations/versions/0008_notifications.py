"""Notifications that reach the customer: the ``notifications`` table becomes the outbox
(a stable public id, the kind's facts, the user of account mail, an encrypted one-time link,
read state), ``notification_deliveries`` holds one row per channel with its claim, attempts
and outcome, and ``notification_settings`` each tenant's channels (webhook secret encrypted).

On PostgreSQL, ``tk_enqueue_notification(…)`` writes a notification and its deliveries; the
outbox adapter calls it, and so can another function in the same transaction (the admission
crossing a threshold).

Rows written before this revision get a public id and no deliveries: they were logged when
they happened and are only listed in-app.

Revision ID: 0008_notifications
Revises: 0006_settle_tenant_revision
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_notifications"
down_revision = "0007_limits"
branch_labels = None
depends_on = None


ENQUEUE = r"""
CREATE FUNCTION tk_enqueue_notification(
    p_tenant text, p_kind text, p_window text, p_percent integer, p_used bigint,
    p_limit bigint, p_provider text, p_detail text, p_user text, p_link_store text,
    p_link_version integer, p_link_token text, p_at timestamptz, p_channels text[],
    p_public_id text DEFAULT NULL
) RETURNS text LANGUAGE plpgsql AS $$
-- Write one notification and a pending delivery per channel, in the caller's transaction.
-- Returns its public id, or NULL when (tenant, kind, window, percent) is already stored:
-- a caller (tk_admit crossing a threshold) may PERFORM it inside its own statement.
DECLARE
    v_id integer;
    v_public text := coalesce(p_public_id, 'msg_' || replace(gen_random_uuid()::text, '-', ''));
BEGIN
    INSERT INTO notifications (public_id, tenant_id, kind, window_key, percent, used,
                               limit_value, provider, detail, user_id, link_store,
                               link_key_version, link_token, created_at)
    VALUES (v_public, p_tenant, p_kind, p_window, p_percent, p_used, p_limit, p_provider,
            p_detail, p_user, p_link_store, p_link_version, p_link_token, p_at)
    ON CONFLICT (tenant_id, kind, window_key, percent) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO notification_deliveries (notification_id, channel, status, attempts,
                                         next_attempt_at)
    SELECT v_id, channel, 'pending', 0, p_at FROM unnest(p_channels) AS channel;
    RETURN v_public;
END;
$$;
"""


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("public_id", sa.String(40)))
        batch.add_column(sa.Column("detail", sa.Text))
        batch.add_column(sa.Column("user_id", sa.String(64)))
        batch.add_column(sa.Column("link_store", sa.String(64)))
        batch.add_column(sa.Column("link_key_version", sa.Integer))
        batch.add_column(sa.Column("link_token", sa.Text))
        batch.add_column(sa.Column("read_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE notifications SET public_id = 'ntf_legacy_' || id WHERE public_id IS NULL")
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("public_id", existing_type=sa.String(40), nullable=False)
        batch.create_unique_constraint("uq_notifications_public_id", ["public_id"])
    op.create_index("ix_notifications_tenant", "notifications", ["tenant_id", "id"])
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "notification_id",
            sa.Integer,
            sa.ForeignKey("notifications.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
        sa.Column("claim_token", sa.String(64)),
        sa.Column("last_error", sa.Text),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("notification_id", "channel", name="uq_deliveries_channel"),
    )
    op.create_index(
        "ix_deliveries_due", "notification_deliveries", ["status", "next_attempt_at"]
    )
    op.create_table(
        "notification_settings",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("email_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("webhook_url", sa.Text),
        sa.Column("secret_store", sa.String(64)),
        sa.Column("secret_key_version", sa.Integer),
        sa.Column("secret_token", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ENQUEUE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION tk_enqueue_notification")
    op.drop_table("notification_settings")
    op.drop_index("ix_deliveries_due", table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
    op.drop_index("ix_notifications_tenant", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_constraint("uq_notifications_public_id", type_="unique")
        for column in (
            "read_at", "link_token", "link_key_version", "link_store", "user_id", "detail",
            "public_id",
        ):
            batch.drop_column(column)
