"""Every key safeeye uses, wrapped by the one master key and kept in the database.

The master key never encrypts data itself: it wraps the service keys (media blobs, scan signals,
blob addresses, the audit log's MAC and signing keys) and each case's own data key. Rotating
the master key re-wraps those keys and touches no data, and once the old master key is
destroyed, no backup made before the rotation can be opened with the new one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from safeeye.config import read_key_file, write_key_file
from safeeye.crypto import derive_key, keyed_digest, new_data_key, unwrap_key, wrap_key
from safeeye.db.models import AuditEvent, Case, Media, Page, ServiceKey, Source
from safeeye.db.types import utcnow
from safeeye.errors import ConfigError, ConflictError, IntegrityError

if TYPE_CHECKING:
    from safeeye.app import SafeEye
    from safeeye.work import Actor

#: The service keys and what each protects.
SERVICE_KEYS: Mapping[str, str] = {
    "media": "media and page blobs",
    "signals": "face embeddings of scanned media",
    "blob-address": "the file names of blobs",
    "audit-head": "the MAC of the audit log's head",
    "audit-signing": "the Ed25519 key that signs audit checkpoints",
    "evidence-signing": "the Ed25519 key that signs evidence packages",
    "notice-signing": "the Ed25519 key that signs requests to recipients' systems",
    "account-secrets": "accounts' TOTP secrets and the login throttle's digests",
}


def _label(name: str) -> str:
    return f"service:{name}"


def case_label(case_id: int) -> str:
    return f"case:{case_id}"


@dataclass(frozen=True)
class RotationReport:
    """What ``rotate`` re-wrapped, and where the new master key is."""

    service_keys: int
    case_keys: int
    key_location: str = ""


class Keyring:
    """The unwrapped service keys, and case keys on demand (never cached beyond a call)."""

    def __init__(self, master_key: bytes, service: Mapping[str, bytes]) -> None:
        self._master = master_key
        self._service = dict(service)

    @classmethod
    def open(cls, session: Session, master_key: bytes) -> Keyring:
        """The keyring in the database (``ConfigError`` when keys are missing or the master key
        does not open them)."""
        return cls.load(session, master_key, create=False)

    @staticmethod
    def stored_names(session: Session) -> list[str]:
        return list(session.execute(select(ServiceKey.name)).scalars())

    @property
    def names(self) -> list[str]:
        return sorted(self._service)

    @classmethod
    def load(cls, session: Session, master_key: bytes, *, create: bool = True) -> Keyring:
        """The keyring in the database; ``create`` makes the missing service keys.

        A database that already holds data from before service keys were stored gets the keys
        that were then derived from the master key, so its data stays readable; a new one gets
        random keys. A master key that unwraps nothing here is refused (``ConfigError``).
        """
        rows = {row.name: row for row in session.execute(select(ServiceKey)).scalars()}
        service: dict[str, bytes] = {}
        for name, row in rows.items():
            try:
                service[name] = unwrap_key(master_key, row.wrapped, _label(name))
            except IntegrityError as exc:
                raise ConfigError(
                    "the master key does not open this database's keys: wrong master.key or "
                    "SAFEEYE_MASTER_KEY for this data"
                ) from exc
        missing = [name for name in SERVICE_KEYS if name not in service]
        if missing and not create:
            raise ConfigError(
                "this database has no keys yet: run `safeeye init`", code="not_initialized"
            )
        if missing:
            legacy = not rows and _holds_data(session)
            for name in missing:
                key = derive_key(master_key, name) if legacy else new_data_key()
                session.add(
                    ServiceKey(
                        name=name,
                        wrapped=wrap_key(master_key, key, _label(name)),
                        created_at=utcnow(),
                    )
                )
                service[name] = key
            session.flush()
        return cls(master_key, service)

    @staticmethod
    def opens(session: Session, master_key: bytes) -> bool:
        """Whether ``master_key`` unwraps this database's keys (True when it has none yet)."""
        row = session.execute(select(ServiceKey).limit(1)).scalar_one_or_none()
        if row is None:
            return True
        try:
            unwrap_key(master_key, row.wrapped, _label(row.name))
        except IntegrityError:
            return False
        return True

    # -- service keys ------------------------------------------------------------------------

    def service(self, name: str) -> bytes:
        return self._service[name]

    @property
    def media(self) -> bytes:
        return self._service["media"]

    @property
    def signals(self) -> bytes:
        return self._service["signals"]

    @property
    def blob_address(self) -> bytes:
        return self._service["blob-address"]

    @property
    def audit_head(self) -> bytes:
        return self._service["audit-head"]

    @property
    def audit_signing(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self._service["audit-signing"])

    @property
    def fingerprint(self) -> str:
        """A short public name of this master key (to tell keys apart, reveals nothing)."""
        return hashlib.sha256(derive_key(self._master, "fingerprint")).hexdigest()[:16]

    # -- case keys ---------------------------------------------------------------------------

    def new_case_key(self, case_id: int) -> tuple[bytes, bytes]:
        """A fresh data key for a case and its wrapped form to store on the case row."""
        key = new_data_key()
        return key, wrap_key(self._master, key, case_label(case_id))

    def case_key(self, case: Case) -> bytes:
        """The case's data key; a purged case has none (``ConflictError``)."""
        if case.wrapped_key is None:
            raise ConflictError(f"case {case.id} was purged; its data key is destroyed")
        return unwrap_key(self._master, case.wrapped_key, case_label(case.id))

    @staticmethod
    def case_digest(case_key: bytes, *parts: str | bytes) -> str:
        """A stable lookup name under the case key: useless once the key is destroyed."""
        return keyed_digest(derive_key(case_key, "lookup"), *parts)

    # -- rotation ----------------------------------------------------------------------------

    def rotate(self, session: Session, new_master: bytes) -> tuple[Keyring, RotationReport]:
        """Re-wrap every service key and every case key under ``new_master`` (in ``session``:
        it all commits together, or nothing changes)."""
        if new_master == self._master:
            raise ConflictError("the new master key is the old one")
        rows = list(session.execute(select(ServiceKey)).scalars())
        for row in rows:
            row.wrapped = wrap_key(new_master, self._service[row.name], _label(row.name))
        cases = list(session.execute(select(Case).where(Case.wrapped_key.is_not(None))).scalars())
        for case in cases:
            case.wrapped_key = wrap_key(new_master, self.case_key(case), case_label(case.id))
        session.flush()
        return Keyring(new_master, self._service), RotationReport(len(rows), len(cases))


def _holds_data(session: Session) -> bool:
    for model in (Case, Media, Page, Source, AuditEvent):
        if session.execute(select(func.count()).select_from(model)).scalar_one():
            return True
    return False


def pending_key_path(key_file: Path) -> Path:
    """Where a rotation keeps the new key until the old one is destroyed."""
    return key_file.with_name(key_file.name + ".new")


def rotate_master_key(app: SafeEye, actor: Actor, output: Path | None = None) -> RotationReport:
    """Re-wrap every key under a new master key, then destroy the old key file.

    The new key is written beside the old one first, so a crash at any point leaves a key
    that opens the database (``app`` start-up finishes an interrupted rotation). A key given in
    ``SAFEEYE_MASTER_KEY`` cannot be destroyed from here: the new one goes to ``output`` and
    the operator replaces the variable.
    """
    settings = app.settings
    from_env = settings.master_key is not None
    if from_env and output is None:
        raise ConfigError(
            "the master key comes from SAFEEYE_MASTER_KEY: name a file for the new key "
            "(--output), then put that key in SAFEEYE_MASTER_KEY",
            code="invalid",
        )
    target = output if from_env and output is not None else settings.master_key_path
    pending = pending_key_path(target)
    new = new_data_key()
    if not write_key_file(pending, new):
        raise ConflictError(f"{pending.name} exists: an earlier rotation did not finish")
    try:
        with app.work(actor) as work:
            keyring, report = app.keys.rotate(work.session, new)
            work.audit(
                "key.rotated",
                "keyring",
                keyring.fingerprint,
                {"service_keys": report.service_keys, "case_keys": report.case_keys},
            )
    except BaseException:
        pending.unlink(missing_ok=True)
        raise
    if from_env:
        os.replace(pending, target)
    else:
        replace_key_file(target, pending)
    app.__dict__["keys"] = keyring
    return replace(report, key_location=str(target.name if not from_env else target))


def replace_key_file(key_file: Path, pending: Path) -> None:
    """Overwrite the old key in place with the new one (its bytes do not stay behind in a
    freed file), then drop the pending copy."""
    new = read_key_file(pending)
    with open(key_file, "r+b") as fh:
        text = pending.read_bytes()
        fh.write(text)
        fh.truncate(len(text))
        fh.flush()
        os.fsync(fh.fileno())
    assert read_key_file(key_file) == new
    pending.unlink()


def finish_rotation(key_file: Path, opens: Callable[[bytes], bool]) -> bytes | None:
    """After a crash during a rotation: the pending new key, made the key file, if it is the
    one that opens the database (``opens``); None when there is nothing to finish."""
    pending = pending_key_path(key_file)
    if not pending.exists():
        return None
    new = read_key_file(pending)
    if not opens(new):
        pending.unlink()  # the rotation never committed: the old key is still the key
        return None
    replace_key_file(key_file, pending)
    return new
