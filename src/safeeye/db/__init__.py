"""The database: SQLAlchemy models, engine and session, Alembic migrations."""
