"""The migrations: the models and the migrated schema agree; every step can be undone."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from safeeye.app import SafeEye
from safeeye.db.models import Base
from safeeye.db.session import alembic_config


def test_migrated_schema_matches_the_models_and_downgrades_cleanly(any_db_app: SafeEye) -> None:
    engine = any_db_app.db.engine
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], diff
    with engine.begin() as conn:
        config = alembic_config(engine)
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
        command.upgrade(config, "head")
