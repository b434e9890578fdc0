"""The stored state of safeeye: every table, in the vocabulary of DESIGN.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from safeeye.db.types import JSONType, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TaskRow:
    """The columns of a row that a task claims (``tasks/leases.py``): how often it was tried,
    when it was last handed to the queue, who holds it until when, and not before when it may
    be tried again."""

    attempts: Mapped[int] = mapped_column(Integer, default=0)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Case(Base):
    """One victim under support, known only by a pseudonymous case code."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    #: The basis of consent (free text from the intake), sealed under the case key.
    consent_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The victim is (or was, when the material was made) a minor: the review queue takes
    #: the case's matches first, and its notices cite the stricter law.
    minor: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    references: Mapped[list[Reference]] = relationship(
        back_populates="case", cascade="all, delete-orphan", passive_deletes=True
    )


class Reference(Base):
    """What a case gives us to look for: a face photo or a known image/video, stored encrypted.

    Nothing here names the content without the case key: ``content_digest`` is a keyed digest
    of its SHA-256 under the case key (to find a reference given twice), and the exact hashes
    (SHA-256 and MD5, for exact matching) are sealed."""

    __tablename__ = "case_references"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "face" | "known"
    content_digest: Mapped[str] = mapped_column(String(64))
    hashes_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    media_type: Mapped[str] = mapped_column(String(16))
    format: Mapped[str | None] = mapped_column(String(16))
    blob_address: Mapped[str] = mapped_column(String(64))
    label_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    case: Mapped[Case] = relationship(back_populates="references")
    faces: Mapped[list[ReferenceFace]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )
    hashes: Mapped[list[ReferenceHash]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )
    features: Mapped[list[ReferenceFeatures]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (UniqueConstraint("case_id", "kind", "content_digest"),)


class ReferenceFace(Base):
    """A face found in a reference; its embedding is sealed under the case's key."""

    __tablename__ = "reference_faces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference_id: Mapped[int] = mapped_column(
        ForeignKey("case_references.id", ondelete="CASCADE"), index=True
    )
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    frame_time: Mapped[float] = mapped_column(Float, default=0.0)
    box: Mapped[list[int]] = mapped_column(JSONType)
    embedding_sealed: Mapped[bytes] = mapped_column(LargeBinary)


class ReferenceHash(Base):
    """One perceptual hash of a known item (one variant: a crop, a mirror, a video frame),
    sealed under the case's key."""

    __tablename__ = "reference_hashes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference_id: Mapped[int] = mapped_column(
        ForeignKey("case_references.id", ondelete="CASCADE"), index=True
    )
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    algorithm: Mapped[str] = mapped_column(String(16), default="pdq")
    variant: Mapped[str] = mapped_column(String(32))
    hash_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[int] = mapped_column(Integer)
    frame_time: Mapped[float] = mapped_column(Float, default=0.0)


class ReferenceFeatures(Base):
    """The local features (ORB keypoints) of a known image, or of its mirror image, sealed
    under the case's key: they find crops that no stored PDQ variant covers."""

    __tablename__ = "reference_features"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference_id: Mapped[int] = mapped_column(
        ForeignKey("case_references.id", ondelete="CASCADE"), index=True
    )
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    mirrored: Mapped[bool] = mapped_column(default=False)
    features_sealed: Mapped[bytes] = mapped_column(LargeBinary)


class Media(TaskRow, Base):
    """The content itself, stored once by SHA-256 (encrypted), with its scan state."""

    __tablename__ = "media"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    md5: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str | None] = mapped_column(String(16))
    format: Mapped[str | None] = mapped_column(String(16))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration: Mapped[float | None] = mapped_column(Float)
    blob_address: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # states.MediaStatus
    error: Mapped[str | None] = mapped_column(Text)
    face_count: Mapped[int | None] = mapped_column(Integer)
    sexual_score: Mapped[float | None] = mapped_column(Float)
    sexual_scores: Mapped[dict[str, float] | None] = mapped_column(JSONType)
    vpdq: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    scanned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    frames: Mapped[list[MediaFrame]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="MediaFrame.time"
    )
    faces: Mapped[list[MediaFace]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="MediaFace.frame_time"
    )


class Sighting(Base):
    """One media file seen at one location: first and last time seen, how it was fetched.

    A location holds one sighting per content (``location_key`` is the SHA-256 of the location,
    so long URLs index well): seeing the same bytes there again updates ``last_seen_at``, while
    changed content at the same URL is a new sighting.
    """

    __tablename__ = "sightings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int | None] = mapped_column(
        ForeignKey("media.id", ondelete="CASCADE"), index=True
    )
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sources.id", ondelete="SET NULL"), index=True
    )
    sha256: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(Text)
    location_key: Mapped[str] = mapped_column(String(64))
    page_url: Mapped[str | None] = mapped_column(Text)
    final_url: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    times_seen: Mapped[int] = mapped_column(Integer, default=1)
    http_status: Mapped[int | None] = mapped_column(Integer)
    http_headers: Mapped[dict[str, str] | None] = mapped_column(JSONType)
    server_ip: Mapped[str | None] = mapped_column(String(64))
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)

    media: Mapped[Media | None] = relationship()

    __table_args__ = (UniqueConstraint("location_key", "sha256"),)


class Source(Base):
    """Where to look: a URL, a site within a scope, a feed, a Telegram export, a folder."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # url|crawl|telegram|folder|upload
    locator: Mapped[str] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    interval_seconds: Mapped[int | None] = mapped_column(Integer)  # None: visit once
    enabled: Mapped[bool] = mapped_column(default=True)
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    last_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The running visit's lease: only its owner writes the visit's results; it renews the lease
    # while it works, and another monitor takes the source over only after the lease expired.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set while visits end "incomplete" (out of time): items handled since then are skipped.
    resume_since: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Visit(Base):
    """One monitoring cycle over one source, written only by the holder of the source's lease
    (``owner``); a visit whose lease expired while "running" is marked "interrupted" and the
    source is visited again."""

    __tablename__ = "visits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="running")
    pages: Mapped[int] = mapped_column(Integer, default=0)
    media_found: Mapped[int] = mapped_column(Integer, default=0)
    media_new: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    matches: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(64))  # the lease token of its monitor


class UrlState(TaskRow, Base):
    """What the last fetch of one URL (or file) of a source found: for conditional re-fetch,
    to skip unchanged content, and to record what failed and why."""

    __tablename__ = "url_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    location: Mapped[str] = mapped_column(Text)
    location_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # page|media
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(String(64))
    fingerprint: Mapped[str | None] = mapped_column(String(128))  # size:mtime of a local file
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(16))  # pending|ok|unchanged|failed
    error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # What the source said about this URL (page, how it was found, evidence), waiting for the
    # fetcher while the row is "pending" (fetching it is a task over this row).
    candidate: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("visits.id", ondelete="SET NULL"), index=True
    )
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("source_id", "location_key"),)


class Crawl(Base):
    """One crawl of a site: from its start URLs until none of its pages is pending, over one
    visit or several (an incomplete visit's pages are carried on by the next). Its counters are
    the crawl's limits, kept together by every worker that reads its pages."""

    __tablename__ = "crawls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    visit_id: Mapped[int | None] = mapped_column(  # the visit that started it
        ForeignKey("visits.id", ondelete="SET NULL"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    pages: Mapped[int] = mapped_column(Integer, default=0)  # URLs queued (max_pages)
    media: Mapped[int] = mapped_column(Integer, default=0)  # media URLs queued (max_media)
    # The trap defences' counts (query variants per path, pages per prefix) and the limits hit.
    traps: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    stopped: Mapped[str | None] = mapped_column(String(32))  # a limit that ended it early


class CrawlPage(TaskRow, Base):
    """One URL of a crawl's frontier (a page, sitemap or feed): fetching and reading it is a
    task over this row. Unique per crawl: each crawl reads the site afresh."""

    __tablename__ = "crawl_pages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id", ondelete="CASCADE"))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    visit_id: Mapped[int | None] = mapped_column(  # the visit that queued it
        ForeignKey("visits.id", ondelete="SET NULL"), index=True
    )
    url: Mapped[str] = mapped_column(Text)  # normalised
    url_key: Mapped[str] = mapped_column(String(64))
    depth: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(8))  # page|sitemap|feed: what it is read as
    found: Mapped[str] = mapped_column(String(8))  # seed|link|sitemap|feed|redirect
    referrer: Mapped[str | None] = mapped_column(Text)  # the page that linked or listed it
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|done|failed
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("crawl_id", "url_key"),)


class Page(Base):
    """Evidence of a page as fetched: its HTML (encrypted blob) and the HTTP facts. A page
    fetched again with the same content only moves ``last_seen_at``."""

    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sources.id", ondelete="SET NULL"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    final_url: Mapped[str | None] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(64), index=True)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    http_status: Mapped[int | None] = mapped_column(Integer)
    http_headers: Mapped[dict[str, str] | None] = mapped_column(JSONType)
    server_ip: Mapped[str | None] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    blob_address: Mapped[str | None] = mapped_column(String(64))
    screenshot_address: Mapped[str | None] = mapped_column(String(64))


class MediaFrame(Base):
    """The frame-level signals of one analysed frame: PDQ and sexual-content scores."""

    __tablename__ = "media_frames"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    frame_index: Mapped[int] = mapped_column(Integer)
    time: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(16))
    pdq_hex: Mapped[str | None] = mapped_column(String(64))
    pdq_quality: Mapped[int | None] = mapped_column(Integer)
    pdq_variants: Mapped[list[list[Any]] | None] = mapped_column(JSONType)
    sexual_score: Mapped[float | None] = mapped_column(Float)
    sexual_scores: Mapped[dict[str, float] | None] = mapped_column(JSONType)
    face_count: Mapped[int] = mapped_column(Integer, default=0)


class MediaFace(Base):
    """A face found in scanned media; its embedding is sealed under the signals key."""

    __tablename__ = "media_faces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    frame_index: Mapped[int] = mapped_column(Integer)
    frame_time: Mapped[float] = mapped_column(Float)
    box: Mapped[list[int]] = mapped_column(JSONType)
    embedding_sealed: Mapped[bytes] = mapped_column(LargeBinary)


class SignalValue(Base):
    """One signal's value (JSON) for one frame of scanned media, or for the whole media
    (``frame_index`` None): any registered signal without columns of its own."""

    __tablename__ = "signal_values"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    frame_index: Mapped[int | None] = mapped_column(Integer)
    signal: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    value: Mapped[Any] = mapped_column(JSONType)


class Match(Base):
    """A link from media to a case, with the evidence that made it (which references, frames:
    sealed under the case's key). Purging the case deletes its matches."""

    __tablename__ = "matches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "face" | "hash"
    distance: Mapped[float] = mapped_column(Float)
    frame_count: Mapped[int] = mapped_column(Integer, default=1)
    evidence_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    case: Mapped[Case] = relationship()
    media: Mapped[Media] = relationship()

    __table_args__ = (UniqueConstraint("media_id", "case_id", "kind"),)


class HostSlot(Base):
    """When the next request to a host may start: the politeness interval every process and
    machine keeps together (``ingest/hostlimits.py``)."""

    __tablename__ = "host_slots"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime())


class NamedLease(Base):
    """A job that must run in exactly one place at a time (the scheduler): who holds it."""

    __tablename__ = "named_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64))
    until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ServiceKey(Base):
    """A service key (media, signals, blob addresses, audit), wrapped by the master key."""

    __tablename__ = "service_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditEvent(Base):
    """An append-only, hash-chained record of who did what, when, to which object."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The chain's tip, MAC'd with a key derived from the master key: reveals tail deletion."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=0)
    mac: Mapped[str] = mapped_column(String(64))


# -- review and takedown ---------------------------------------------------------------------


class Review(Base):
    """A person's decision on a match: confirmed, rejected (with a reason), escalated, or
    reopened. The match's status follows the latest decision; the note is sealed."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    decision: Mapped[str] = mapped_column(String(16))  # states.MatchStatus
    reason: Mapped[str | None] = mapped_column(String(32))  # review.decisions.RejectReason
    category: Mapped[str | None] = mapped_column(String(24))  # takedown.model.Category
    note_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AllowedPlace(Base):
    """The victim's own account or URL (sealed): what is seen only there is never reported."""

    __tablename__ = "case_allowlist"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # url (a prefix) | host | account
    pattern_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Recipient(Base):
    """Who receives deletion requests: the regulator's hotline, a platform, a hosting network,
    a registrar, a hash-sharing program. ``covers`` names the domains and networks it answers
    for; ``escalates_to`` is the next step of the ladder when it does not act in time."""

    __tablename__ = "recipients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(24))  # takedown.recipients.RecipientKind
    jurisdiction: Mapped[str | None] = mapped_column(String(8))  # KR, US, EU, NL, ...
    connector: Mapped[str] = mapped_column(String(16))  # api | email | stopncii | export
    address: Mapped[str | None] = mapped_column(Text)  # an https:// endpoint or an e-mail
    languages: Mapped[list[str]] = mapped_column(JSONType, default=list)
    deadline_hours: Mapped[float] = mapped_column(Float, default=24.0)
    covers: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    legal_routes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    requires: Mapped[list[str]] = mapped_column(JSONType, default=list)
    escalates_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("recipients.id", ondelete="SET NULL")
    )
    origin: Mapped[str] = mapped_column(String(16), default="admin")  # default | admin | rdap
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class RdapAnswer(Base):
    """A cached RDAP answer (an IP network's or a domain's registration data)."""

    __tablename__ = "rdap_cache"

    query: Mapped[str] = mapped_column(String(255), primary_key=True)  # "ip:..." | "domain:..."
    answer: Mapped[dict[str, Any]] = mapped_column(JSONType)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EvidencePackage(Base):
    """The signed evidence of one sighting: a manifest (URL, page, final URL, time, HTTP facts,
    server address, hashes) signed with Ed25519, the page as a WARC record and a blurred
    screenshot, each a blob."""

    __tablename__ = "evidence_packages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sighting_id: Mapped[int] = mapped_column(
        ForeignKey("sightings.id", ondelete="CASCADE"), index=True
    )
    manifest_address: Mapped[str] = mapped_column(String(64))
    warc_address: Mapped[str | None] = mapped_column(String(64))
    screenshot_address: Mapped[str | None] = mapped_column(String(64))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)  # base64 Ed25519 over the manifest bytes
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Notice(TaskRow, Base):
    """One deletion request for one sighting to one recipient. What it says is sealed under the
    case key; ``idempotency_key`` travels with every send of it, so a recipient (and the
    outbox) can tell a repeat from a new request."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sighting_id: Mapped[int] = mapped_column(
        ForeignKey("sightings.id", ondelete="CASCADE"), index=True
    )
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    match_id: Mapped[int | None] = mapped_column(ForeignKey("matches.id", ondelete="SET NULL"))
    batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("batches.id", ondelete="SET NULL"), index=True
    )
    cites_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id", ondelete="SET NULL"))
    escalated_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("notices.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default="draft")  # states.NoticeStatus
    language: Mapped[str] = mapped_column(String(8))
    category: Mapped[str] = mapped_column(String(24))  # illegally_filmed | synthetic | minor
    content_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    automatic: Mapped[bool] = mapped_column(default=False)  # sent without a person (re-upload)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    resends: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_by: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("sighting_id", "recipient_id"),)


class Batch(TaskRow, Base):
    """Notices sent together to one recipient through one connector."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id"), index=True)
    connector: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="draft")  # states.BatchStatus
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_by: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)


class OutboxItem(TaskRow, Base):
    """One send (a batch's request, or one notice's e-mail) waiting to go out, with the key
    that makes sending it again harmless; the outbox is how nothing is lost or sent twice."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # states.OutboxStatus
    notice_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)


class Recheck(Base):
    """A later fetch of a notice's URL: is the content still there?"""

    __tablename__ = "rechecks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), index=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    result: Mapped[str] = mapped_column(String(16))  # present | removed | changed | unreachable
    http_status: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)


class RecipientAnswer(Base):
    """What a recipient said about a notice: acknowledged, removed, refused (with a reason)."""

    __tablename__ = "recipient_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # acknowledged | removed | refused | other
    reason: Mapped[str | None] = mapped_column(Text)
    via: Mapped[str] = mapped_column(String(16))  # api | email | manual
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# -- accounts (safeeye.accounts): people who log in, their sessions, API tokens, login attempts --


class User(Base):
    """A person (or an automation) who logs in to the workbench, with the roles they hold."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    roles: Mapped[list[str]] = mapped_column(JSONType, default=list)  # work.Role values
    password_hash: Mapped[str] = mapped_column(String(255))  # Argon2id, PHC string
    must_change_password: Mapped[bool] = mapped_column(default=False)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The TOTP secret sealed under the account-secrets key; live once ``totp_enabled``.
    totp_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled: Mapped[bool] = mapped_column(default=False)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # replay protection
    language: Mapped[str] = mapped_column(String(8), default="ko")
    blur_level: Mapped[str] = mapped_column(String(16), default="strong")
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebSession(Base):
    """A logged-in browser: only the SHA-256 of its cookie's token is kept."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the absolute lifetime
    client: Mapped[str | None] = mapped_column(String(300))  # address and browser, shortened
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """A bearer token for automation, acting as its user: only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the token's first characters, for display
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LoginAttempt(Base):
    """One login attempt, for throttling across processes: the account name and the client
    address only as keyed digests (a password typed into the name field is not kept)."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    username_digest: Mapped[str] = mapped_column(String(64), index=True)
    address_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    succeeded: Mapped[bool] = mapped_column(default=False)


class SosReport(Base):
    """A report made on the public SOS page, without an account: it opened its case (status
    "pending" until a counselor accepts it). The visitor holds the tracking code and the PIN;
    only a keyed digest of the code and an Argon2 hash of the PIN are kept. What she wrote (the
    URLs, a contact, a note, a message asking for contact) is sealed under the case key, so a
    purge makes it unreadable; the purge also deletes the row (``cases.service.purge_case``)."""

    __tablename__ = "sos_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), unique=True, index=True
    )
    #: HMAC of the tracking code under a service key (useless without the key).
    tracking_digest: Mapped[str] = mapped_column(String(64), unique=True)
    pin_hash: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8))
    reporter: Mapped[str] = mapped_column(String(16))  # "victim" | "helper"
    consent_face_matching: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_hash_sharing: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The reported URLs, the optional contact and note, and the sources made (JSON), sealed.
    details_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    url_count: Mapped[int] = mapped_column(Integer, default=0)
    photo_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consent_withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    contact_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    contact_message_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: When a counselor last marked her request for contact handled (a later request asks again).
    contact_handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_view_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The latest of: reported, consent withdrawn, contact asked (the intake list's order).
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
