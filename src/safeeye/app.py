"""The running service: settings, database, blob store, keys and audit log, built once."""

from __future__ import annotations

import getpass
from functools import cached_property
from typing import TYPE_CHECKING

from safeeye.audit import AuditLog
from safeeye.config import Settings
from safeeye.crypto import derive_key, new_data_key, unwrap_key, wrap_key
from safeeye.db.models import Case
from safeeye.db.session import Database
from safeeye.errors import ConflictError
from safeeye.storage import BlobStore

if TYPE_CHECKING:
    from safeeye.matching.matcher import Matcher
    from safeeye.pipeline.detectors import Detectors


class Keyring:
    """Every key safeeye uses, derived from or wrapped by the one master key."""

    def __init__(self, master_key: bytes) -> None:
        self._master = master_key
        self.media = derive_key(master_key, "media")
        self.signals = derive_key(master_key, "signals")

    @property
    def master(self) -> bytes:
        return self._master

    def new_case_key(self, case_id: int) -> tuple[bytes, bytes]:
        """A fresh data key for a case and its wrapped form to store on the case row."""
        key = new_data_key()
        return key, wrap_key(self._master, key, f"case:{case_id}")

    def case_key(self, case: Case) -> bytes:
        """The case's data key; a purged case has none."""
        if case.wrapped_key is None:
            raise ConflictError(f"case {case.code} was purged; its data key is destroyed")
        return unwrap_key(self._master, case.wrapped_key, f"case:{case.id}")


class SafeEye:
    """The service container handed to the CLI, the web app and the workers."""

    def __init__(self, settings: Settings, *, actor: str | None = None) -> None:
        self.settings = settings
        settings.ensure_data_dir()
        self.keys = Keyring(settings.load_master_key())
        self.db = Database(settings.database)
        self.blobs = BlobStore(settings.blob_dir, self.keys.master)
        self.audit = AuditLog(self.keys.master)
        self.actor = actor or settings.actor or f"cli:{_login()}"

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


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
