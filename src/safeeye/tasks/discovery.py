"""Discovery as tasks over rows: ``fetch_media`` over URL state rows (``visit_source``, over
source rows, lives with the monitor in ``ingest/monitor.py``; ``fetch_page``, over a crawl's
pages, in ``tasks/crawling.py``).

A visit (or a crawl's page task) discovers what a source shows and queues each media URL as a
URL state row waiting to be fetched (``queue_fetch``); ``fetch_media`` claims such rows, fetches
them (conditionally, with the per-host interval every process keeps together), stores what it
got first (blob, media row, sighting) and queues its scan. Files a visit reads itself (a watched
folder, a Telegram export, a body the crawler already fetched) are stored by the visit and
queued for a scan the same way.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from safeeye.db.models import Sighting, UrlState
from safeeye.db.states import MediaStatus
from safeeye.db.types import utcnow
from safeeye.errors import FetchError, error_text
from safeeye.ingest.fetcher import FetchResult
from safeeye.pipeline.record import SightingFacts, Stored, location_key, seen_again, store_file
from safeeye.signals.hashes import hash_file
from safeeye.tasks import TASKS, Results, Runner, TaskContext, task
from safeeye.tasks.leases import give_back, holds, release

if TYPE_CHECKING:
    from safeeye.db.models import Source
    from safeeye.ingest.sources import Candidate

log = logging.getLogger(__name__)

FETCH_BATCH = 16
FETCH_THREADS = 4


@dataclass(frozen=True)
class FetchOutcome:
    """What fetching one URL state row came to: ``unchanged``, ``failed`` or ``stored``."""

    state_id: int
    location: str
    result: str
    error: str | None = None
    stored: Stored | None = None


@task("fetch_media", max_attempts=3, batch=FETCH_BATCH)
def fetch_media(ctx: TaskContext, state_ids: list[int]) -> Results:
    """Fetch the queued URLs this worker can claim, store what they show, queue the scans."""
    app = ctx.app
    claimed: list[tuple[int, str, dict[str, Any], UrlState]] = []
    results: Results = {}
    for state_id in state_ids:
        with app.db.session() as session:
            state = ctx.claim(session, UrlState, state_id, UrlState.status == "pending")
            if state is None:
                results[state_id] = None
                continue
            session.expunge(state)
        claimed.append((state_id, state.location, dict(state.candidate or {}), state))
    with (
        ctx.heartbeat(UrlState, [item[0] for item in claimed]),
        ThreadPoolExecutor(min(FETCH_THREADS, max(1, len(claimed)))) as pool,
    ):
        fetched = list(pool.map(lambda item: _fetch(ctx, item[3], item[2]), claimed))
    for (state_id, location, candidate, state), outcome in zip(claimed, fetched, strict=True):
        result, error = outcome
        try:
            results[state_id] = _settle(ctx, state, candidate, result, error)
        except Exception as exc:  # its database work was rolled back: tried again later
            _retry(ctx, state_id, error_text(exc, "recording a fetch"))
            results[state_id] = FetchOutcome(state_id, location, "failed", "retrying")
        finally:
            if result is not None:
                result.unlink()
    return results


def _fetch(
    ctx: TaskContext, state: UrlState, candidate: dict[str, Any]
) -> tuple[FetchResult | None, str | None]:
    """The fetched body (or 304), or the error that is this URL's; never raises."""
    conditional = bool(candidate.get("conditional")) and state.sha256 is not None
    try:
        result = ctx.fetcher.fetch(
            candidate.get("url") or state.location,
            etag=state.etag if conditional else None,
            last_modified=state.last_modified if conditional else None,
            obey_robots=bool(candidate.get("obey_robots", True)),
            want="media",
        )
    except FetchError as exc:
        return None, exc.as_text()
    except OSError as exc:
        return None, f"io: {exc.strerror or exc.__class__.__name__}"
    except Exception as exc:  # one URL's failure, whatever it is, is that URL's
        return None, error_text(exc, "fetching one item")
    return result, None


def _settle(
    ctx: TaskContext,
    state: UrlState,
    candidate: dict[str, Any],
    result: FetchResult | None,
    error: str | None,
) -> FetchOutcome:
    """Record the fetch: store first and queue the scan, or mark it unchanged or failed."""
    app = ctx.app
    stored = None
    with app.work(ctx.actor) as work:
        row = work.session.get(UrlState, state.id)
        if row is None or not holds(row, ctx.owner):
            return FetchOutcome(state.id, state.location, "failed", "lost")
        row.last_checked_at = utcnow()
        if error is not None or result is None:
            row.status, row.error = "failed", (error or "no body")[:2000]
            row.failures = (row.failures or 0) + 1
            outcome = FetchOutcome(state.id, row.location, "failed", row.error)
        elif result.not_modified:
            row.status = "ok"
            touch_sighting(work.session, row.location_key, row.sha256)
            outcome = FetchOutcome(state.id, row.location, "unchanged")
        else:
            assert result.path is not None
            hashes = hash_file(result.path)
            stored = store_file(work, result.path, hashes, fetched_facts(row, candidate, result))
            row.status, row.error, row.failures = "ok", None, 0
            row.sha256 = hashes.sha256
            row.etag = result.etag
            row.last_modified = result.last_modified[:64] if result.last_modified else None
            outcome = FetchOutcome(state.id, row.location, "stored", stored=stored)
        release(row)
    if stored is not None:
        queue_scan(ctx.runner, stored)
    return outcome


def queue_scan(runner: Runner, stored: Stored) -> None:
    """Queue the scan of stored media (or, content scanned before, its matching)."""
    if stored.media_id is None:
        return
    pending = stored.media_status == MediaStatus.PENDING
    runner.submit("scan_media" if pending else "match_media", stored.media_id)


def candidate_json(candidate: Candidate, source: Source, obey: bool) -> dict[str, Any]:
    """What the fetcher needs to know about a URL a source found (kept on its URL state)."""
    return {
        "url": candidate.url,
        "page_url": candidate.page_url,
        "page_id": candidate.page_id,
        "how": candidate.how,
        "evidence": candidate.evidence,
        "source_kind": source.kind,
        "obey_robots": obey,
    }


def queue_fetch(
    session: Session, source: Source, visit_id: int | None, candidate: Candidate, obey: bool
) -> int:
    """The URL state of ``candidate``, made (or set) pending for ``fetch_media``."""
    state = url_state(session, source.id, candidate.location)
    details = candidate_json(candidate, source, obey)
    details["conditional"] = state.status == "ok"
    state.candidate = details
    state.status, state.visit_id, state.queued_at = "pending", visit_id, utcnow()
    state.attempts, state.lease_owner, state.lease_until, state.not_before = 0, None, None, None
    session.flush()
    return state.id


def url_state(session: Session, source_id: int, location: str) -> UrlState:
    """The source's URL state of a media ``location`` (a new one, added, if it has none)."""
    key = location_key(location)
    state = session.execute(
        select(UrlState).where(UrlState.source_id == source_id, UrlState.location_key == key)
    ).scalar_one_or_none()
    if state is None:
        state = UrlState(
            source_id=source_id,
            location=location,
            location_key=key,
            kind="media",
            failures=0,
            attempts=0,
        )
        session.add(state)
    return state


def _retry(ctx: TaskContext, state_id: int, error: str) -> None:
    with ctx.app.db.session() as session:
        row = session.get(UrlState, state_id)
        if row is None or not holds(row, ctx.owner):
            return
        delay = give_back(row, error, TASKS["fetch_media"].max_attempts)
        if delay is None:
            row.status = "failed"
            return
    ctx.runner.submit("fetch_media", state_id, delay=delay)


def touch_sighting(session: Any, location_key: str, sha256: str | None) -> None:
    """Unchanged content was seen again: its sighting's last-seen time moves."""
    if not sha256:
        return
    sighting = session.execute(
        select(Sighting).where(Sighting.location_key == location_key, Sighting.sha256 == sha256)
    ).scalar_one_or_none()
    if sighting is not None:
        seen_again(sighting)


def fetched_facts(
    state: UrlState, candidate: dict[str, Any], result: FetchResult | None
) -> SightingFacts:
    """Where and how this media was seen, from what the source said and the fetch found."""
    evidence = {
        "how": candidate.get("how", ""),
        "source_kind": candidate.get("source_kind"),
        **(candidate.get("evidence") or {}),
    }
    if candidate.get("page_id") is not None:
        evidence["page_id"] = candidate["page_id"]
    facts = SightingFacts(
        location=state.location,
        page_url=candidate.get("page_url"),
        evidence=evidence,
        source_id=state.source_id,
    )
    if result is not None:
        evidence.update(
            fetched_at=result.fetched_at.isoformat(),
            redirects=result.redirects,
            declared_type=result.content_type,
            bytes=result.size,
        )
        facts.final_url, facts.http_status = result.final_url, result.status
        facts.http_headers, facts.server_ip = result.headers, result.server_ip
    return facts


def local_facts(source_id: int, candidate: dict[str, Any], location: str) -> SightingFacts:
    """The facts of a file a visit read itself (no HTTP)."""
    evidence = {
        "how": candidate.get("how", ""),
        "source_kind": candidate.get("source_kind"),
        **(candidate.get("evidence") or {}),
    }
    if candidate.get("page_id") is not None:
        evidence["page_id"] = candidate["page_id"]
    return SightingFacts(
        location=location,
        page_url=candidate.get("page_url"),
        evidence=evidence,
        source_id=source_id,
    )


def path_of(candidate: dict[str, Any]) -> Path | None:
    value = candidate.get("path")
    return Path(value) if value else None
