"""Evidence packages: the signed record of one sighting (a manifest of its facts, the page as a
WARC file, a blurred screenshot), built from what safeeye kept and exported as a folder that
an auditor verifies offline (``package.verify_package``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from safeeye.db.models import EvidencePackage, Page, Sighting
from safeeye.db.types import utcnow
from safeeye.errors import ConflictError, IntegrityError, NotFoundError, SafeEyeError, unexpected
from safeeye.files import write_atomically
from safeeye.ingest.fetcher import Fetcher
from safeeye.ingest.policy import fetch_policy
from safeeye.takedown.model import EvidenceRef
from safeeye.takedown.package import (
    MANIFEST,
    PACKAGE_VERSION,
    PUBLIC_KEY,
    SCREENSHOT,
    SIGNATURE,
    WARC,
    VerifyReport,
    canonical,
    file_entry,
    public_key_text,
    sign,
    text_file,
    verify_package,
)
from safeeye.takedown.screenshot import (
    Document,
    ScreenshotPolicy,
    blur_png,
    chromium_missing,
    render_page,
)
from safeeye.takedown.warc import FetchedPage, page_warc
from safeeye.work import Role, Work

if TYPE_CHECKING:
    from safeeye.app import SafeEye

__all__ = [
    "EvidenceSummary",
    "ExportSummary",
    "VerifyReport",
    "build_package",
    "evidence_public_key",
    "evidence_ref",
    "export_package",
    "verify_package",
]

#: The blob namespace of packages' files (sealed under the media key, as pages are).
NAMESPACE = "evidence"
SIGNING_KEY = "evidence-signing"


@dataclass(frozen=True)
class EvidenceSummary:
    """A built package: its id, what it holds, and how a notice cites it (``ref``)."""

    package_id: int
    sighting_id: int
    manifest_sha256: str
    public_key: str
    created_at: datetime
    files: tuple[str, ...]  # the files besides the manifest: page.warc.gz, screenshot.png
    screenshot_reason: str | None  # why it has no screenshot
    reused: bool  # an earlier package of the sighting, not a new one

    @property
    def ref(self) -> EvidenceRef:
        return EvidenceRef(self.package_id, self.manifest_sha256, self.public_key)


@dataclass(frozen=True)
class ExportSummary:
    """A package written out as a folder."""

    package_id: int
    folder: str
    files: tuple[str, ...]


def signing_key(app: SafeEye) -> Ed25519PrivateKey:
    """The Ed25519 key that signs evidence packages (a service key under the master key)."""
    return Ed25519PrivateKey.from_private_bytes(app.keys.service(SIGNING_KEY))


def evidence_public_key(work: Work) -> str:
    """The base64 public key that packages are signed with: what an auditor should trust."""
    return public_key_text(signing_key(work.app))


def build_package(
    work: Work,
    sighting_id: int,
    *,
    screenshot: bool = True,
    new: bool = False,
    shots: ScreenshotPolicy | None = None,
) -> EvidenceSummary:
    """The sighting's evidence package: its latest one, or (none yet, or ``new``) one built
    now from the kept page and a screenshot taken through the safe fetcher (``shots``), signed
    and stored. A package whose screenshot cannot be taken is built without one and says why.
    """
    work.require(Role.REVIEWER, Role.COUNSELOR, Role.SYSTEM, action="build evidence packages")
    session, app = work.session, work.app
    sighting = session.get(Sighting, sighting_id)
    if sighting is None:
        raise NotFoundError(f"no sighting {sighting_id}")
    if not new:
        latest = _latest(session, sighting_id)
        if latest is not None:
            return _summary(app, latest, reused=True)
    page = kept_page(session, sighting)
    html = (
        app.blobs.get_bytes(page.blob_address, app.keys.media)
        if page is not None and page.blob_address
        else None
    )
    contents: dict[str, bytes] = {}
    if page is not None and html is not None:
        contents[WARC] = page_warc(
            FetchedPage(
                page.final_url or page.url,
                page.fetched_at,
                page.http_status or 200,
                page.http_headers or {},
                page.server_ip,
                html,
            )
        )
    shot: dict[str, Any] | None = None
    reason = "not asked for"
    if screenshot:
        shot, png, reason = _screenshot(app, _shown_url(sighting, page), page, html, shots)
        if png is not None:
            contents[SCREENSHOT] = png
    key = signing_key(app)
    created = utcnow()
    manifest = _manifest(sighting, page, contents, shot, reason, created, public_key_text(key))
    manifest_bytes = canonical(manifest)
    addresses = {
        name: app.blobs.put_bytes(data, app.keys.media, NAMESPACE)
        for name, data in contents.items()
    }
    row = EvidencePackage(
        sighting_id=sighting.id,
        manifest_address=app.blobs.put_bytes(manifest_bytes, app.keys.media, NAMESPACE),
        warc_address=addresses.get(WARC),
        screenshot_address=addresses.get(SCREENSHOT),
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        signature=sign(key, manifest_bytes),
        created_at=created,
    )
    session.add(row)
    session.flush()
    work.audit(
        "evidence.built",
        "evidence_package",
        row.id,
        {
            "sighting_id": sighting.id,
            "manifest_sha256": row.manifest_sha256,
            "files": sorted(contents),
            "screenshot_reason": manifest["screenshot_reason"],
        },
    )
    return EvidenceSummary(
        row.id,
        sighting.id,
        row.manifest_sha256,
        manifest["public_key"],
        created,
        tuple(sorted(contents)),
        manifest["screenshot_reason"],
        reused=False,
    )


def evidence_ref(work: Work, sighting_id: int) -> EvidenceRef | None:
    """How a notice cites the sighting's latest package (None when it has none yet)."""
    row = _latest(work.session, sighting_id)
    if row is None:
        return None
    return _summary(work.app, row, reused=True).ref


def export_package(work: Work, package_id: int, folder: Path) -> ExportSummary:
    """Write the package into ``folder`` (made when missing; ``ConflictError`` when it holds
    package files already): the manifest, its signature, the public key and the files it lists,
    exactly as signed (``IntegrityError`` when a stored file no longer matches)."""
    work.require(Role.REVIEWER, Role.COUNSELOR, Role.AUDITOR, Role.SYSTEM, action="export evidence")
    app = work.app
    row = work.session.get(EvidencePackage, package_id)
    if row is None:
        raise NotFoundError(f"no evidence package {package_id}")
    manifest_bytes = _stored(app, row.manifest_address, row.manifest_sha256, MANIFEST)
    manifest = _manifest_of(manifest_bytes)
    files = {
        MANIFEST: manifest_bytes,
        SIGNATURE: text_file(row.signature),
        PUBLIC_KEY: text_file(manifest["public_key"]),
    }
    stored = {WARC: row.warc_address, SCREENSHOT: row.screenshot_address}
    for name, entry in manifest["files"].items():
        address = stored.get(name)
        if address is None:
            raise IntegrityError(f"package {row.id} lists {name} but does not hold it")
        files[name] = _stored(app, address, entry["sha256"], name)
    folder.mkdir(parents=True, exist_ok=True)
    taken = sorted(name for name in files if (folder / name).exists())
    if taken:
        raise ConflictError(f"{folder} already holds {', '.join(taken)}: name an empty folder")
    for name, data in files.items():
        write_atomically(folder / name, [data])
    work.audit(
        "evidence.exported",
        "evidence_package",
        row.id,
        {"sighting_id": row.sighting_id, "manifest_sha256": row.manifest_sha256},
    )
    return ExportSummary(row.id, str(folder), tuple(sorted(files)))


# -- building ----------------------------------------------------------------------------------


def _latest(session: Session, sighting_id: int) -> EvidencePackage | None:
    return session.execute(
        select(EvidencePackage)
        .where(EvidencePackage.sighting_id == sighting_id)
        .order_by(EvidencePackage.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def kept_page(session: Session, sighting: Sighting) -> Page | None:
    """The page the sighting was found on, as kept: the one it names, else the latest kept
    fetch of its page URL."""
    page_id = (sighting.evidence or {}).get("page_id")
    if isinstance(page_id, int):
        page = session.get(Page, page_id)
        if page is not None:
            return page
    if not sighting.page_url:
        return None
    url_key = hashlib.sha256(sighting.page_url.encode()).hexdigest()
    return session.execute(
        select(Page).where(Page.url_key == url_key).order_by(Page.id.desc()).limit(1)
    ).scalar_one_or_none()


def _shown_url(sighting: Sighting, page: Page | None) -> str:
    if page is not None:
        return page.final_url or page.url
    return sighting.page_url or sighting.final_url or sighting.location


def _screenshot(
    app: SafeEye,
    url: str,
    page: Page | None,
    html: bytes | None,
    shots: ScreenshotPolicy | None,
) -> tuple[dict[str, Any] | None, bytes | None, str | None]:
    """The blurred screenshot and what the manifest says of it, or why there is none. The
    kept HTML is the document shown; the rest of the page is fetched now, through the guard."""
    policy = shots or ScreenshotPolicy()
    missing = chromium_missing(policy)
    if missing:
        return None, None, missing
    fetching = fetch_policy(app.settings)
    fetching = replace(fetching, total_timeout=min(fetching.total_timeout, policy.budget))
    document = None
    if page is not None and html is not None:
        document = Document(html, page.http_headers or {"content-type": "text/html"})
    try:
        with Fetcher(fetching) as fetcher:
            render = render_page(
                url, fetcher, document=document, policy=policy, temp_dir=fetching.temp_dir
            )
        blurred = blur_png(render.png, policy)
    except SafeEyeError as exc:
        return None, None, exc.as_text()
    except Exception as exc:  # a broken screenshot must not stop the package
        return None, None, unexpected(exc, "screenshot").as_text()
    info = {
        "url": render.url,
        "taken_at": render.taken_at.isoformat(),
        "document": "kept page" if document is not None else "fetched",
        "width": blurred.width,
        "height": blurred.height,
        "blur": {"kind": "gaussian", "radius": round(blurred.radius, 1)},
        "complete": render.complete,
        "requests": render.requests,
    }
    return info, blurred.png, None


def _manifest(
    sighting: Sighting,
    page: Page | None,
    contents: dict[str, bytes],
    shot: dict[str, Any] | None,
    reason: str | None,
    created: datetime,
    public_key: str,
) -> dict[str, Any]:
    """What the package vouches for, signed as ``package.canonical`` bytes."""
    media = sighting.media
    evidence = sighting.evidence or {}
    return {
        "version": PACKAGE_VERSION,
        "sighting_id": sighting.id,
        "url": sighting.location,
        "page_url": sighting.page_url,
        "final_url": sighting.final_url,
        "redirects": evidence.get("redirects") or [],
        "first_seen": sighting.seen_at.isoformat(),
        "last_seen": sighting.last_seen_at.isoformat(),
        "times_seen": sighting.times_seen,
        "http_status": sighting.http_status,
        "http_headers": sighting.http_headers or {},
        "server_ip": sighting.server_ip,
        "media": {"sha256": sighting.sha256, "md5": media.md5 if media is not None else None},
        "page": _page_facts(page),
        "files": {name: file_entry(data) for name, data in sorted(contents.items())},
        "screenshot": shot,
        "screenshot_reason": None if shot is not None else reason,
        "created_at": created.isoformat(),
        "signature_algorithm": "Ed25519",
        "public_key": public_key,
    }


def _page_facts(page: Page | None) -> dict[str, Any] | None:
    if page is None:
        return None
    return {
        "url": page.url,
        "final_url": page.final_url,
        "fetched_at": page.fetched_at.isoformat(),
        "last_seen": page.last_seen_at.isoformat(),
        "http_status": page.http_status,
        "http_headers": page.http_headers or {},
        "server_ip": page.server_ip,
        "sha256": page.sha256,
        "kept": page.blob_address is not None,
    }


# -- reading back ------------------------------------------------------------------------------


def _stored(app: SafeEye, address: str, sha256: str, name: str) -> bytes:
    data = app.blobs.get_bytes(address, app.keys.media)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise IntegrityError(f"the stored {name} does not match its package")
    return data


def _manifest_of(data: bytes) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(data)
    return manifest


def _summary(app: SafeEye, row: EvidencePackage, *, reused: bool) -> EvidenceSummary:
    manifest = _manifest_of(_stored(app, row.manifest_address, row.manifest_sha256, MANIFEST))
    return EvidenceSummary(
        row.id,
        row.sighting_id,
        row.manifest_sha256,
        manifest["public_key"],
        row.created_at,
        tuple(sorted(manifest["files"])),
        manifest.get("screenshot_reason"),
        reused=reused,
    )
