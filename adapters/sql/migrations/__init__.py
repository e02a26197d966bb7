"""Alembic environment and revisions; run through ``adapters.sql.database.upgrade``."""
