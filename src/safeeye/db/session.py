"""Engine and sessions: one code path for SQLite (WAL) and PostgreSQL, migrated with Alembic.

SQLite's Python driver, left to itself, opens transactions late and lets a ``SAVEPOINT`` start a
transaction of its own that ``RELEASE`` commits: a nested savepoint would then commit the outer
work early. So safeeye takes transaction control from the driver and emits ``BEGIN`` itself:
``BEGIN IMMEDIATE`` for a unit of work that may write (it waits for the write lock up front, so
two writers never fail half-way with "database is locked"), plain ``BEGIN`` for a read-only one.
Deleted content is overwritten (``secure_delete``), so a purge leaves nothing in free pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
#: Execution option that makes a SQLite unit of work begin without taking the write lock.
READ_ONLY = "safeeye_read_only"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys, secure delete and explicit BEGIN."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # the driver never opens or commits on its own
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, master_key: bytes | None = None) -> None:
    """Bring the schema to the newest migration (idempotent). Migrations that re-encrypt
    existing rows need ``master_key``."""
    with _migrating(engine, master_key) as config:
        command.upgrade(config, "head")


def downgrade(engine: Engine, revision: str, master_key: bytes | None = None) -> None:
    """Take the schema back to ``revision`` ("base": nothing)."""
    with _migrating(engine, master_key) as config:
        command.downgrade(config, revision)


@contextmanager
def _migrating(engine: Engine, master_key: bytes | None) -> Iterator[Config]:
    """An Alembic config on one connection in one transaction.

    On SQLite, foreign keys are off meanwhile: a batch migration rebuilds a table by copying
    and dropping it, and dropping a parent table with foreign keys on would cascade.
    """
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        if sqlite:
            raw.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                config = alembic_config(engine)
                config.attributes["connection"] = connection
                config.attributes["master_key"] = master_key
                yield config
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left {len(broken)} dangling references")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


class Database:
    """The engine and a session factory; ``session()`` is a unit of work that commits on success."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self._read_factory = sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def session_factory(self, read_only: bool = False) -> sessionmaker[Session]:
        return self._read_factory if read_only else self._factory

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[Session]:
        """One unit of work: everything in it commits together, or nothing does.

        ``read_only=True`` promises not to write (on SQLite it then does not wait for the write
        lock); writing in such a unit may fail with "database is locked" under contention.
        """
        session = self.session_factory(read_only)()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def flush_deleted(self) -> None:
        """Make deleted rows unrecoverable from the files: on SQLite, checkpoint the write-ahead
        log into the database (whose freed space ``secure_delete`` has zeroed) and truncate the
        log to nothing. PostgreSQL needs its operator (VACUUM, backups: docs/security.md)."""
        if not self.is_sqlite:
            return
        with self.engine.connect() as connection:
            raw = connection.connection.driver_connection
            assert raw is not None
            busy, _log, _done = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                raise RuntimeError("the write-ahead log could not be emptied: a reader held it")

    def has_schema(self) -> bool:
        """Whether safeeye's tables exist here (the database was set up before)."""
        return inspect(self.engine).has_table("alembic_version")

    def dispose(self) -> None:
        self.engine.dispose()


def count_rows(session: Session, table: str) -> int:
    """The number of rows in ``table`` (a trusted table name)."""
    return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
