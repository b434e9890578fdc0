"""Cases as the workbench reads them: a page of the case list with what each case stands at, one
case's summary and references, its notices page by page, what a purge would destroy, and each
uploaded reference's outcome in a word.

Every list is one page, read with a fixed number of queries whatever its length (counts are
grouped over the page's cases only), so a page answers as fast with 100,000 sightings as with ten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from safeeye.cases.service import ReferenceOutcome, get_case
from safeeye.db.models import AllowedPlace, Case, Match, Notice, Reference
from safeeye.db.states import CaseStatus, MatchStatus, NoticeStatus
from safeeye.errors import ConflictError, ValidationError
from safeeye.ingest.sightings import newest_first
from safeeye.takedown.drafting import NoticeSummary, summarize_all
from safeeye.work import Role, Work

#: A page of cases holds 1 to this many.
MAX_PAGE = 500
#: A notice in one of these states still waits on someone (an officer, the recipient).
OPEN_NOTICES = (
    NoticeStatus.DRAFT,
    NoticeStatus.APPROVED,
    NoticeStatus.SENT,
    NoticeStatus.ACKNOWLEDGED,
)
#: The references a case page lists at most (a case has a handful; counts are always whole).
REFERENCES_SHOWN = 200


@dataclass(frozen=True)
class CaseRow:
    """One case as the list shows it (never its key, consent text or references)."""

    code: str
    status: str
    minor: bool
    consent: bool
    consent_at: str | None
    face_references: int
    known_references: int
    matches_pending: int
    matches_confirmed: int
    notices_open: int
    created_at: str


@dataclass(frozen=True)
class CasePage:
    items: list[CaseRow]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class ReferenceRow:
    """A reference as the case page lists it: its kind and when it came, never the file."""

    id: int
    kind: str
    media_type: str
    created_at: str


@dataclass(frozen=True)
class CaseDetail:
    row: CaseRow
    purged_at: str | None
    references: list[ReferenceRow]


@dataclass(frozen=True)
class PurgePreview:
    """What purging a case would destroy."""

    code: str
    references: int
    matches: int
    notices: int
    allowed_places: int


def list_case_rows(
    work: Work, *, status: str | None = None, limit: int = 50, offset: int = 0
) -> CasePage:
    """One page of cases, newest first (``status``: only those), with the count of all."""
    work.require(Role.COUNSELOR, Role.REVIEWER, Role.AUDITOR, action="list cases")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ValidationError(f"a page holds 1 to {MAX_PAGE} cases from an offset of 0 or more")
    session = work.session
    query = select(Case)
    count = select(func.count(Case.id))
    if status:
        query, count = query.where(Case.status == status), count.where(Case.status == status)
    cases = list(
        session.execute(query.order_by(Case.id.desc()).limit(limit).offset(offset)).scalars()
    )
    total = session.execute(count).scalar_one()
    return CasePage(_rows(work, cases), total, limit, offset)


def case_detail(work: Work, code: str) -> CaseDetail:
    """One case: where it stands and its references (kind and date only)."""
    work.require(Role.COUNSELOR, Role.REVIEWER, Role.AUDITOR, action="read cases")
    case = get_case(work.session, code)
    references = [
        ReferenceRow(ref_id, kind, media_type, created.isoformat())
        for ref_id, kind, media_type, created in work.session.execute(
            select(Reference.id, Reference.kind, Reference.media_type, Reference.created_at)
            .where(Reference.case_id == case.id)
            .order_by(Reference.id.desc())
            .limit(REFERENCES_SHOWN)
        )
    ]
    return CaseDetail(_rows(work, [case])[0], _iso(case.purged_at), references)


def case_notices(
    work: Work, code: str, *, limit: int = 20, before: int | None = None
) -> list[NoticeSummary]:
    """The case's notices, newest first, at most ``limit``; the next page is ``before`` the
    last ``id`` of this one."""
    work.require(Role.COUNSELOR, Role.REVIEWER, Role.AUDITOR, action="list notices")
    case = get_case(work.session, code)
    query = newest_first(select(Notice).where(Notice.case_id == case.id), Notice.id, limit, before)
    return summarize_all(work.session, list(work.session.execute(query).scalars()))


def purge_preview(work: Work, code: str) -> PurgePreview:
    """How much purging the case would destroy (the page that asks to confirm shows it)."""
    work.require(Role.COUNSELOR, action="purge cases")
    case = get_case(work.session, code)
    if case.status == CaseStatus.PURGED:
        raise ConflictError(f"case {code} was purged")
    session = work.session

    def count(model: type[Reference | Match | Notice | AllowedPlace]) -> int:
        query = select(func.count(model.id)).where(model.case_id == case.id)
        return int(session.execute(query).scalar_one())

    return PurgePreview(
        case.code, count(Reference), count(Match), count(Notice), count(AllowedPlace)
    )


def outcome_kind(outcome: ReferenceOutcome) -> str:
    """One word for what became of an uploaded reference: ``added``, ``duplicate``,
    ``no_face``, ``not_a_photo`` or ``unreadable``."""
    if outcome.error is None:
        return "duplicate" if outcome.note == "already registered" else "added"
    code = outcome.error.split(":", 1)[0]
    if code == "no_face":
        return "no_face"
    if code == "unsupported" and "not a video" in outcome.error:
        return "not_a_photo"
    return "unreadable"


def _rows(work: Work, cases: list[Case]) -> list[CaseRow]:
    """``cases`` with their counts: one grouped query per count, over these cases only."""
    session = work.session
    ids = [case.id for case in cases]
    if not ids:
        return []
    refs = {
        (case_id, kind): n
        for case_id, kind, n in session.execute(
            select(Reference.case_id, Reference.kind, func.count(Reference.id))
            .where(Reference.case_id.in_(ids))
            .group_by(Reference.case_id, Reference.kind)
        )
    }
    matches = {
        (case_id, status): n
        for case_id, status, n in session.execute(
            select(Match.case_id, Match.status, func.count(Match.id))
            .where(Match.case_id.in_(ids))
            .group_by(Match.case_id, Match.status)
        )
    }
    notices = dict(
        session.execute(
            select(Notice.case_id, func.count(Notice.id))
            .where(Notice.case_id.in_(ids), Notice.status.in_(OPEN_NOTICES))
            .group_by(Notice.case_id)
        ).all()
    )
    return [
        CaseRow(
            code=case.code,
            status=case.status,
            minor=bool(case.minor),
            consent=case.consent_at is not None,
            consent_at=_iso(case.consent_at),
            face_references=refs.get((case.id, "face"), 0),
            known_references=refs.get((case.id, "known"), 0),
            matches_pending=matches.get((case.id, MatchStatus.PENDING), 0)
            + matches.get((case.id, MatchStatus.ESCALATED), 0),
            matches_confirmed=matches.get((case.id, MatchStatus.CONFIRMED), 0),
            notices_open=notices.get(case.id, 0),
            created_at=case.created_at.isoformat(),
        )
        for case in cases
    ]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
