"""The running service: settings, database, blob store, keys and audit log, built once."""

from __future__ import annotations

import getpass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError as DBIntegrityError

from safeeye.audit import AuditLog, CheckpointStore
from safeeye.config import Settings
from safeeye.db.session import Database, migrate
from safeeye.errors import ConfigError
from safeeye.keyring import Keyring, finish_rotation
from safeeye.storage import BlobStore

if TYPE_CHECKING:
    from safeeye.matching.matcher import Matcher
    from safeeye.pipeline.detectors import Detectors


class SafeEye:
    """The service container handed to the CLI, the web app and the workers."""

    def __init__(self, settings: Settings, *, actor: str | None = None) -> None:
        self.settings = settings
        settings.ensure_data_dir()
        self.db = Database(settings.database, migrate_schema=False)
        master = _master_key(settings, self.db)
        if settings.master_key is None and self.db.has_schema():
            master = finish_rotation(settings.master_key_path, self._opens) or master
        migrate(self.db.engine, master)
        make_private(settings)
        self.keys = _keyring(self.db, master)
        self.blobs = BlobStore(settings.blob_dir, self.keys.blob_address)
        self.audit = AuditLog(
            self.keys, CheckpointStore(settings.audit_checkpoint_path, settings.audit_witness)
        )
        self.actor = actor or settings.actor or f"cli:{_login()}"

    def _opens(self, master: bytes) -> bool:
        with self.db.session(read_only=True) as session:
            return Keyring.opens(session, master)

    @cached_property
    def detectors(self) -> Detectors:
        from safeeye.pipeline.detectors import Detectors

        return Detectors.from_settings(self.settings)

    @cached_property
    def matcher(self) -> Matcher:
        from safeeye.matching.matcher import Matcher

        return Matcher(self)

    def close(self) -> None:
        self.db.dispose()


def _master_key(settings: Settings, db: Database) -> bytes:
    """The master key; a missing key file beside an existing database is an error, never a
    new key (a new key would open nothing, and the data would look lost)."""
    try:
        return settings.load_master_key(create=False)
    except ConfigError as exc:
        if exc.code != "no_master_key":
            raise
    if db.has_schema():
        raise ConfigError(
            f"{settings.master_key_path.name} is missing but the database exists: restore the "
            "key from its backup (or set SAFEEYE_MASTER_KEY); a new key cannot open this data",
            code="no_master_key",
        )
    return settings.load_master_key(create=True)


def _keyring(db: Database, master: bytes) -> Keyring:
    for attempt in range(2):
        try:
            with db.session() as session:
                return Keyring.load(session, master)
        except DBIntegrityError:  # another process stored the keys first: load theirs
            if attempt:
                raise
    raise AssertionError("unreachable")


def make_private(settings: Settings) -> None:
    """Data dir, blob and temp folders 0700; database and key files 0600, whatever they were."""
    settings.ensure_data_dir()
    for folder in (settings.blob_dir,):
        folder.mkdir(exist_ok=True, mode=0o700)
        folder.chmod(0o700)
    files = [settings.master_key_path]
    if settings.database.startswith("sqlite:///"):
        db_file = Path(settings.database.removeprefix("sqlite:///"))
        files += [db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")]
    for path in files:
        if path.exists():
            path.chmod(0o600)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
