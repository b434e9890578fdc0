"""A person's decisions on matches (confirm, reject with a reason, escalate, reopen), and the
victim's own places that are never reported.

Every decision is a ``Review`` row and an audit event in the reviewer's unit of work; the
match's status follows it through ``states.move``, so an impossible move (rejecting a match
that is not waiting, say) is refused. What the reviewer writes, and the victim's own accounts
and URLs, are sealed under the case key.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from safeeye.cases.service import get_case
from safeeye.crypto import seal, unseal
from safeeye.db.models import AllowedPlace, Case, Match, Review
from safeeye.db.states import CaseStatus, MatchStatus, move
from safeeye.db.types import utcnow
from safeeye.errors import ConflictError, NotFoundError, ValidationError
from safeeye.ingest.urls import normalize_url
from safeeye.takedown.model import Category
from safeeye.work import Role, Work


class RejectReason(StrEnum):
    """Why a match is not reported."""

    NOT_VICTIM = "not_victim"  # another person
    NOT_SEXUAL = "not_sexual"  # nothing to take down
    OWN_PUBLICATION = "own_publication"  # the victim's own or permitted publication
    OTHER = "other"  # said in the note


class PlaceKind(StrEnum):
    URL = "url"  # this URL and everything under it
    HOST = "host"  # every URL on this host (and its subdomains)
    ACCOUNT = "account"  # an account name as it appears in URLs, e.g. t.me/NAME, x.com/NAME


@dataclass(frozen=True)
class Decision:
    """A decision as recorded."""

    review_id: int
    match_id: int
    case: str
    decision: str
    reason: str | None
    status: str
    actor: str
    at: str


@dataclass(frozen=True)
class AllowedPlaceSummary:
    id: int
    case: str
    kind: str
    pattern: str


def confirm(
    work: Work,
    match_ids: list[int],
    note: str | None = None,
    category: Category | str = Category.ILLEGALLY_FILMED,
) -> list[Decision]:
    """The matches show the victim: they may become deletion requests, in ``category`` (what
    the notices will call the content: illegally filmed, a synthetic image of her, a minor)."""
    try:
        kind = Category(category)
    except ValueError as exc:
        choices = ", ".join(c.value for c in Category)
        raise ValidationError(f"the category is one of {choices}") from exc
    return _decide(work, match_ids, MatchStatus.CONFIRMED, None, note, kind)


def reject(
    work: Work, match_ids: list[int], reason: RejectReason | str, note: str | None = None
) -> list[Decision]:
    """The matches are not to be reported, for ``reason`` (``other`` needs a note)."""
    try:
        why = RejectReason(reason)
    except ValueError as exc:
        choices = ", ".join(r.value for r in RejectReason)
        raise ValidationError(f"a rejection needs a reason: one of {choices}") from exc
    if why is RejectReason.OTHER and not (note and note.strip()):
        raise ValidationError("a rejection for another reason needs a note saying which")
    return _decide(work, match_ids, MatchStatus.REJECTED, why, note)


def escalate(work: Work, match_ids: list[int], note: str | None = None) -> list[Decision]:
    """The matches need a second look (a senior reviewer, a counselor who knows the victim)."""
    return _decide(work, match_ids, MatchStatus.ESCALATED, None, note)


def reopen(work: Work, match_ids: list[int], note: str | None = None) -> list[Decision]:
    """Take a confirmation or a rejection back: the matches wait for a decision again."""
    return _decide(work, match_ids, MatchStatus.PENDING, None, note)


def _decide(
    work: Work,
    match_ids: list[int],
    decision: MatchStatus,
    reason: RejectReason | None,
    note: str | None,
    category: Category | None = None,
) -> list[Decision]:
    work.require(Role.REVIEWER, action="decide on matches")
    if not match_ids:
        raise ValidationError("name at least one match")
    decisions = []
    for match_id in dict.fromkeys(match_ids):  # each once, in the order given
        match = work.session.get(Match, match_id)
        if match is None:
            raise NotFoundError(f"no match {match_id}")
        case = work.session.get(Case, match.case_id)
        assert case is not None
        if case.status == CaseStatus.PURGED:
            raise ConflictError(f"match {match_id} belongs to a purged case")
        move(match, decision)
        key = work.app.keys.case_key(case)
        now = utcnow()
        review = Review(
            match_id=match.id,
            case_id=case.id,
            decision=decision.value,
            reason=reason.value if reason else None,
            category=category.value if category else None,
            actor=work.actor.name,
            at=now,
        )
        work.session.add(review)
        work.session.flush()
        if note:
            review.note_sealed = seal(key, note.encode(), f"review:{review.id}".encode())
        work.audit(
            f"match.{decision.value}" if decision is not MatchStatus.PENDING else "match.reopened",
            "match",
            match.id,
            {"reason": review.reason, "category": review.category, "review": review.id},
            case=(case.id, key),
            private={"case": case.code},
        )
        decisions.append(
            Decision(
                review.id,
                match.id,
                case.code,
                review.decision,
                review.reason,
                match.status,
                review.actor,
                now.isoformat(),
            )
        )
    return decisions


def review_note(work: Work, review_id: int) -> str | None:
    """What the reviewer wrote (unsealed for a reader with the right role)."""
    work.require(Role.REVIEWER, Role.AUDITOR, action="read review notes")
    review = work.session.get(Review, review_id)
    if review is None:
        raise NotFoundError(f"no review {review_id}")
    if review.note_sealed is None:
        return None
    case = work.session.get(Case, review.case_id)
    assert case is not None
    key = work.app.keys.case_key(case)
    return unseal(key, review.note_sealed, f"review:{review.id}".encode()).decode()


# -- the victim's own places -----------------------------------------------------------------


def allow_place(work: Work, code: str, kind: PlaceKind | str, pattern: str) -> AllowedPlaceSummary:
    """Never report what is seen at ``pattern`` (the victim's own account or site)."""
    work.require(Role.COUNSELOR, action="change a case's allow-list")
    place = PlaceKind(kind)
    normal = _normal_pattern(place, pattern)
    case = get_case(work.session, code)
    if case.status == CaseStatus.PURGED:
        raise ConflictError(f"case {code} was purged")
    key = work.app.keys.case_key(case)
    row = AllowedPlace(case_id=case.id, kind=place.value, pattern_sealed=b"")
    work.session.add(row)
    work.session.flush()
    row.pattern_sealed = seal(key, normal.encode(), f"allowed:{row.id}".encode())
    work.audit(
        "case.place_allowed",
        "case",
        case.id,
        {"kind": place.value},
        case=(case.id, key),
        private={"case": code, "pattern": normal},
    )
    return AllowedPlaceSummary(row.id, case.code, place.value, normal)


def list_allowed(work: Work, code: str) -> list[AllowedPlaceSummary]:
    work.require(Role.COUNSELOR, Role.REVIEWER, action="read a case's allow-list")
    case = get_case(work.session, code)
    return [
        AllowedPlaceSummary(row.id, case.code, row.kind, pattern)
        for row, pattern in _places(work, work.session, case)
    ]


def remove_allowed(work: Work, code: str, place_id: int) -> None:
    work.require(Role.COUNSELOR, action="change a case's allow-list")
    case = get_case(work.session, code)
    row = work.session.get(AllowedPlace, place_id)
    if row is None or row.case_id != case.id:
        raise NotFoundError(f"no allowed place {place_id} in case {code}")
    work.session.delete(row)
    work.audit("case.place_disallowed", "case", case.id, {"place": place_id})


def allowed_for(work: Work, case: Case, *urls: str | None) -> bool:
    """Whether any of ``urls`` (a sighting's location, final URL, page) is one of the case's
    own places."""
    return among(own_places(work, case), *urls)


def own_places(work: Work, case: Case) -> list[tuple[PlaceKind, str]]:
    """The case's own places, opened (for many checks with ``among``)."""
    return [(PlaceKind(row.kind), pattern) for row, pattern in _places(work, work.session, case)]


def among(places: list[tuple[PlaceKind, str]], *urls: str | None) -> bool:
    """Whether any of ``urls`` is one of ``places``."""
    return any(_matches(kind, pattern, url) for url in urls if url for kind, pattern in places)


def _places(work: Work, session: Session, case: Case) -> list[tuple[AllowedPlace, str]]:
    rows = session.execute(
        select(AllowedPlace).where(AllowedPlace.case_id == case.id).order_by(AllowedPlace.id)
    ).scalars()
    key = work.app.keys.case_key(case)
    return [
        (row, unseal(key, row.pattern_sealed, f"allowed:{row.id}".encode()).decode())
        for row in rows
    ]


def _normal_pattern(kind: PlaceKind, pattern: str) -> str:
    text = pattern.strip()
    if not text:
        raise ValidationError("an allowed place needs a URL, a host or an account name")
    if kind is PlaceKind.URL:
        normal = normalize_url(text)
        if normal is None:
            raise ValidationError("not a usable http(s) URL")
        return normal
    if kind is PlaceKind.HOST:
        try:
            host = (urlsplit(text).hostname if "//" in text else text) or ""
        except ValueError as exc:  # e.g. an unclosed IPv6 bracket
            raise ValidationError("not a host name") from exc
        host = host.lower().strip(".")
        if not host or "/" in host or " " in host:
            raise ValidationError("not a host name")
        return host
    return text.lstrip("@").lower()


def _matches(kind: PlaceKind, pattern: str, url: str) -> bool:
    if kind is PlaceKind.URL:
        normal = normalize_url(url) or url
        return normal == pattern or normal.startswith(pattern.rstrip("/") + "/")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if kind is PlaceKind.HOST:
        return host == pattern or host.endswith("." + pattern)
    segments = [s.lower().lstrip("@") for s in parts.path.split("/") if s]
    return bool(segments) and segments[0] == pattern
