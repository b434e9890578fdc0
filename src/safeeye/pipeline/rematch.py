"""Re-matching the archive: media scanned before a case (or a reference) existed is matched
again from its stored signals, without fetching or decoding anything."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from safeeye.cases.service import get_case
from safeeye.db.models import Media
from safeeye.pipeline.record import store_matches, stored_analysis
from safeeye.work import Role, Work

BATCH = 200


@dataclass(frozen=True)
class RematchReport:
    case: str | None
    media_checked: int
    new_matches: int


def rematch_archive(work: Work, code: str | None = None) -> RematchReport:
    """Match every scanned media against the current references (of one case, if given).

    Matches that exist already are kept (their evidence is updated when it got better); new
    ones are created and audited like any scan's. Local-feature (ORB) matches need the pixels,
    which the archive does not keep: those come only from a new scan. Commits batch by batch.
    """
    work.require(Role.COUNSELOR, Role.REVIEWER, action="re-match the archive")
    app, session = work.app, work.session
    case_id = get_case(session, code).id if code is not None else None
    checked = created = 0
    last_id = 0
    while True:
        app.matcher.refresh(session)
        batch = list(
            session.execute(
                select(Media)
                .where(Media.status == "scanned", Media.id > last_id)
                .order_by(Media.id)
                .limit(BATCH)
            ).scalars()
        )
        if not batch:
            break
        for media in batch:
            last_id = media.id
            candidates = app.matcher.match(stored_analysis(app, media))
            if case_id is not None:
                candidates = [c for c in candidates if c.case_id == case_id]
            stored = store_matches(work, media, candidates)
            created += sum(1 for s in stored if s.new)
            checked += 1
        work.commit()
    work.audit(
        "archive.rematched",
        "case" if code else "archive",
        case_id,
        {"media": checked, "new_matches": created},
    )
    return RematchReport(code, checked, created)
