"""The running service: settings, database, keys, blob store and audit log.

Building a ``SafeEye`` touches nothing: no migration, no key file. ``init()`` sets a data dir up
(idempotent, safe when several processes start at once); the keys are read on first use.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from safeeye.audit import AuditLog, CheckpointStore
from safeeye.config import Settings
from safeeye.db.session import Database
from safeeye.errors import ConfigError
from safeeye.keyring import Keyring, finish_rotation
from safeeye.storage import BlobStore, open_blob_store
from safeeye.work import Actor, Work

T = TypeVar("T")

if TYPE_CHECKING:
    from safeeye.bootstrap import InitReport
    from safeeye.matching.matcher import Matcher
    from safeeye.pipeline.detectors import Detectors


class SafeEye:
    """The service container handed to the CLI, the web app and the workers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database)

    def init(self) -> InitReport:
        """Create what is missing (data dir, master key, schema, service keys); see
        ``bootstrap.initialize``."""
        from safeeye.bootstrap import initialize

        report = initialize(self)
        self.__dict__.pop("keys", None)
        return report

    @contextmanager
    def work(self, actor: Actor, *, read_only: bool = False) -> Iterator[Work]:
        """One unit of work for ``actor``: everything done in it commits together, or nothing."""
        work = Work(self, self.db.session_factory(read_only)(), actor)
        try:
            yield work
            work.session.commit()
        except BaseException:
            work.session.rollback()
            raise
        finally:
            work.session.close()
        work._run_after_commit()

    def call(self, actor: Actor, service: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``service(work, *args, **kwargs)`` in a unit of work of its own, as ``actor``."""
        with self.work(actor) as work:
            return service(work, *args, **kwargs)

    @cached_property
    def keys(self) -> Keyring:
        """The keyring, opened with the master key (``ConfigError`` before ``init``)."""
        settings = self.settings
        try:
            master = settings.load_master_key(create=False)
        except ConfigError as exc:
            if exc.code != "no_master_key":
                raise
            raise ConfigError(
                "safeeye is not set up in this data dir (no master key): run `safeeye init`",
                code="not_initialized",
            ) from exc
        if settings.master_key is None:
            master = finish_rotation(settings.master_key_path, self._opens) or master
        with self.db.session(read_only=True) as session:
            return Keyring.open(session, master)

    def _opens(self, master: bytes) -> bool:
        with self.db.session(read_only=True) as session:
            return Keyring.opens(session, master)

    @cached_property
    def blobs(self) -> BlobStore:
        return open_blob_store(self.settings, self.keys.blob_address)

    @cached_property
    def audit(self) -> AuditLog:
        settings = self.settings
        return AuditLog(
            self.keys, CheckpointStore(settings.audit_checkpoint_path, settings.audit_witness)
        )

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


def console_actor(settings: Settings) -> Actor:
    """Whoever runs a command on this machine: ``SAFEEYE_ACTOR`` or ``cli:<login>``."""
    return Actor.operator(settings.actor or f"cli:{_login()}")


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
