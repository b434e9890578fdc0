"""``safeeye init``: set up a data dir and database, idempotently, with several processes at once.

Everything that creates state at start-up happens here and nowhere else: the private data dir,
the master key, the schema, the service keys. A file lock in the data dir serialises processes
of one machine; on PostgreSQL an advisory lock serialises machines sharing the database.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from alembic.migration import MigrationContext
from sqlalchemy import text

from safeeye.config import Settings
from safeeye.db.session import Database, migrate
from safeeye.errors import ConfigError
from safeeye.keyring import Keyring, finish_rotation
from safeeye.takedown.recipients import load_defaults
from safeeye.work import Actor

if TYPE_CHECKING:
    from safeeye.app import SafeEye

LOCK_FILE = "init.lock"
#: The PostgreSQL advisory lock key that serialises ``init`` across machines.
PG_LOCK_KEY = 0x5AFE_E7E0


@dataclass(frozen=True)
class InitReport:
    """What ``init`` found and did."""

    data_dir: str
    created_master_key: bool
    schema_before: str | None
    schema_now: str | None
    migrated: bool
    service_keys_created: int
    recipients_added: int = 0


def initialize(app: SafeEye) -> InitReport:
    """Create what is missing: the data dir (made private), the master key (never beside an
    existing database), the schema (migrated to the newest revision), the service keys and
    the shipped recipients directory."""
    settings = app.settings
    settings.ensure_data_dir()
    with _file_lock(settings.data_dir / LOCK_FILE), _database_lock(app.db):
        master, created = _master_key(settings, app.db)
        if settings.master_key is None and app.db.has_schema():

            def opens(key: bytes) -> bool:
                with app.db.session(read_only=True) as session:
                    return Keyring.opens(session, key)

            master = finish_rotation(settings.master_key_path, opens) or master
        before = _revision(app.db)
        migrate(app.db.engine, master)
        now = _revision(app.db)
        with app.db.session() as session:
            existing = len(Keyring.stored_names(session))
            keyring = Keyring.load(session, master, create=True)
        recipients = app.call(Actor.system("init"), load_defaults)
        make_private(settings)
    return InitReport(
        data_dir=str(settings.data_dir),
        created_master_key=created,
        schema_before=before,
        schema_now=now,
        migrated=before != now,
        service_keys_created=len(keyring.names) - existing,
        recipients_added=len(recipients.inserted),
    )


def _master_key(settings: Settings, db: Database) -> tuple[bytes, bool]:
    """The master key and whether it was made now; a missing key file beside an existing
    database is an error, never a new key (a new key would open nothing)."""
    try:
        return settings.load_master_key(create=False), False
    except ConfigError as exc:
        if exc.code != "no_master_key":
            raise
    if db.has_schema():
        raise ConfigError(
            f"{settings.master_key_path.name} is missing but the database exists: restore the "
            "key from its backup (or set SAFEEYE_MASTER_KEY); a new key cannot open this data",
            code="no_master_key",
        )
    key = settings.load_master_key(create=True)
    return key, True


def make_private(settings: Settings) -> None:
    """Data dir and blob folder 0700; database and key files 0600, whatever they were."""
    settings.ensure_data_dir()
    settings.blob_dir.mkdir(exist_ok=True, mode=0o700)
    settings.blob_dir.chmod(0o700)
    files = [settings.master_key_path]
    if settings.database.startswith("sqlite:///"):
        db_file = Path(settings.database.removeprefix("sqlite:///"))
        files += [db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")]
    for path in files:
        if path.exists():
            path.chmod(0o600)


def _revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _database_lock(db: Database) -> Iterator[None]:
    """On PostgreSQL, a session-level advisory lock (other machines share the database);
    SQLite serialises writers by itself."""
    if db.is_sqlite:
        yield
        return
    with db.engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_LOCK_KEY})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
            connection.commit()
