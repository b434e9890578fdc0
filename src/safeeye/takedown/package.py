"""The evidence package format: a signed manifest and the files it vouches for, and its
verification with nothing but the package's folder (an auditor needs no safeeye database).

A package folder holds ``manifest.json`` (canonical JSON: sorted keys, no spaces, UTF-8),
``manifest.sig`` (the base64 Ed25519 signature of those exact bytes), ``public_key.txt`` (the
base64 raw Ed25519 key that signed it, also named inside the manifest), and the files the
manifest lists under ``files`` with their SHA-256: ``page.warc.gz`` and ``screenshot.png``
where the package has them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PACKAGE_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public_key.txt"
WARC = "page.warc.gz"
SCREENSHOT = "screenshot.png"
#: The files a manifest may list (nothing else is ever read from a package folder).
CONTENT_FILES = (WARC, SCREENSHOT)
#: A manifest larger than this is not read (a package's manifest is a few kilobytes).
MAX_MANIFEST_BYTES = 4 * 1024**2


def canonical(manifest: dict[str, Any]) -> bytes:
    """The manifest's bytes as signed: sorted keys, no insignificant spaces, UTF-8."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def public_key_text(key: Ed25519PrivateKey) -> str:
    """The base64 raw public key of ``key``."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def sign(key: Ed25519PrivateKey, manifest_bytes: bytes) -> str:
    """The base64 Ed25519 signature of ``manifest_bytes``."""
    return base64.b64encode(key.sign(manifest_bytes)).decode("ascii")


def text_file(text: str) -> bytes:
    """How a one-line file (the signature, the public key) is written: exactly, with one
    final newline, so that no byte of it may change unnoticed."""
    return (text + "\n").encode("ascii")


def file_entry(data: bytes) -> dict[str, Any]:
    """How a manifest lists a file."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


@dataclass(frozen=True)
class Check:
    """One verification step: what was checked, whether it held, and why not."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class VerifyReport:
    """The verdict on a package folder: ``ok`` when every check held."""

    folder: str
    checks: tuple[Check, ...]
    public_key: str | None  # the key the manifest names
    trusted: bool | None  # None: no trusted key was given to compare it with
    sighting_id: int | None
    unlisted: tuple[str, ...] = ()  # files in the folder that the manifest does not vouch for

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.ok)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "folder": self.folder,
            "sighting_id": self.sighting_id,
            "public_key": self.public_key,
            "trusted": self.trusted,
            "checks": [asdict(check) for check in self.checks],
            "failed": [check.name for check in self.failures],
            "unlisted": list(self.unlisted),
        }


def verify_package(folder: Path, trusted_key: str | None = None) -> VerifyReport:
    """Check a package offline: the signature over the manifest's bytes with the key it names,
    that key against ``public_key.txt`` (and against ``trusted_key``, the base64 key the
    auditor trusts, when given), and every listed file's SHA-256 and size."""
    checks: list[Check] = []
    manifest_bytes = _read(folder / MANIFEST, MAX_MANIFEST_BYTES)
    manifest = _parse(manifest_bytes)
    if manifest is None:
        checks.append(Check(MANIFEST, False, "missing, too large or not a JSON object"))
        return VerifyReport(str(folder), tuple(checks), None, None, None, _unlisted(folder, {}))
    assert manifest_bytes is not None
    named = manifest.get("public_key")
    key_text = named if isinstance(named, str) else None
    checks.append(_signature(manifest_bytes, key_text, _read(folder / SIGNATURE, 1024)))
    same = key_text is not None and _read(folder / PUBLIC_KEY, 1024) == text_file(key_text)
    checks.append(
        Check(PUBLIC_KEY, same, "" if same else "differs from the key the manifest names")
    )
    trusted = None
    if trusted_key is not None:
        trusted = trusted_key.strip() == key_text
        checks.append(
            Check("trusted key", trusted, "" if trusted else "not the key the auditor trusts")
        )
    files = manifest.get("files")
    listed = files if isinstance(files, dict) else {}
    if not isinstance(files, dict):
        checks.append(Check("files", False, "the manifest lists no files"))
    for name, entry in sorted(listed.items()):
        checks.append(_file(folder, name, entry))
    sighting = manifest.get("sighting_id")
    return VerifyReport(
        str(folder),
        tuple(checks),
        key_text,
        trusted,
        sighting if isinstance(sighting, int) else None,
        _unlisted(folder, listed),
    )


def _signature(manifest_bytes: bytes, key_text: str | None, signature: bytes | None) -> Check:
    if key_text is None:
        return Check("signature", False, "the manifest names no public key")
    if signature is None:
        return Check("signature", False, f"{SIGNATURE} is missing")
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(key_text, validate=True))
        if not signature.endswith(b"\n"):
            raise ValueError("no final newline")
        key.verify(base64.b64decode(signature[:-1], validate=True), manifest_bytes)
    except (binascii.Error, ValueError):
        return Check("signature", False, "the signature or the key is not valid base64 Ed25519")
    except InvalidSignature:
        return Check("signature", False, "does not match the manifest's bytes")
    return Check("signature", True)


def _file(folder: Path, name: object, entry: object) -> Check:
    label = str(name)
    if name not in CONTENT_FILES or not isinstance(entry, dict):
        return Check(label[:100], False, "not a file a package may list")
    data = _read(folder / label, None)
    if data is None:
        return Check(label, False, "missing")
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        return Check(label, False, "SHA-256 differs from the manifest's")
    if len(data) != entry.get("size"):
        return Check(label, False, "size differs from the manifest's")
    return Check(label, True)


def _read(path: Path, limit: int | None) -> bytes | None:
    """The file's bytes; None when it is missing, not a plain file or over ``limit``."""
    try:
        if not path.is_file() or path.is_symlink():
            return None
        if limit is not None and path.stat().st_size > limit:
            return None
        return path.read_bytes()
    except OSError:
        return None


def _parse(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _unlisted(folder: Path, listed: dict[str, Any]) -> tuple[str, ...]:
    known = {MANIFEST, SIGNATURE, PUBLIC_KEY, *listed}
    try:
        return tuple(sorted(p.name for p in folder.iterdir() if p.name not in known))
    except OSError:
        return ()
