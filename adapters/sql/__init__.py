"""SQL persistence: SQLAlchemy Core tables, repositories and the usage ledger, on SQLite
(the embedded default) and PostgreSQL. Alembic in ``migrations`` owns the schema."""
