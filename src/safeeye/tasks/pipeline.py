"""The scan steps as tasks over media rows: ``scan_media`` and ``match_media``.

``scan_media`` takes media that was stored first (blob and row, status pending), reads the blob
into a private temporary file, analyses it (in supervised worker processes: a time and memory
budget per file), records the signals and matches it, all in one unit of work; media that could
not be scanned keeps its hashes and the failure, never its bytes. ``match_media`` matches media
scanned before (seen again somewhere) from its stored signals.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import update

from safeeye.db.models import Media, Sighting, UrlState
from safeeye.db.states import MediaStatus, move
from safeeye.errors import MediaError, error_text, unexpected
from safeeye.pipeline.analyze import MediaAnalysis
from safeeye.pipeline.record import StoredMatch, store_matches, store_media, stored_analysis
from safeeye.signals.hashes import ContentHashes
from safeeye.tasks import TASKS, Results, TaskContext, task
from safeeye.tasks.leases import give_back, holds, release
from safeeye.tempfiles import process_temp_dir

log = logging.getLogger(__name__)

#: Files analysed at once by one runner call (the analysis workers share them).
SCAN_BATCH = 32


@dataclass
class ScanOutcome:
    """What scanning (or matching) one media row produced, for the caller that waits for it."""

    media_id: int
    analysis: MediaAnalysis
    matches: list[StoredMatch] = field(default_factory=list)
    reused: bool = False


@dataclass
class _Claimed:
    media_id: int
    hashes: ContentHashes
    blob_address: str
    path: Path | None = None
    spooled: bool = True  # a temporary copy of the blob (deleted after), not the caller's file


@task("scan_media", max_attempts=3, batch=SCAN_BATCH)
def scan_media(ctx: TaskContext, media_ids: list[int]) -> Results:
    """Analyse, record and match each pending media row this worker can claim."""
    app = ctx.app
    results: Results = {}
    claimed: list[_Claimed] = []
    for media_id in media_ids:
        with app.work(ctx.actor) as work:
            media = ctx.claim(work.session, Media, media_id, Media.status == MediaStatus.PENDING)
            if media is None or media.blob_address is None:
                results[media_id] = None
                continue
            hashes = ContentHashes(media.sha256, media.md5, media.size_bytes)
            claimed.append(_Claimed(media_id, hashes, media.blob_address))
    if not claimed:
        return results
    with app.db.session(read_only=True) as session:  # today's references
        app.matcher.refresh(session)
    ready: list[_Claimed] = []
    for item in claimed:
        try:
            local_copy = ctx.local_copy(item.media_id, item.hashes.size)
            item.path, item.spooled = local_copy or _spool(ctx, item.blob_address), not local_copy
            ready.append(item)
        except Exception as exc:  # the blob store is away or the blob damaged
            _failed(ctx, item.media_id, error_text(exc, "reading a stored blob"))
            results[item.media_id] = None
    local = len(app.matcher.local) > 0
    try:
        with ctx.heartbeat(Media, [item.media_id for item in ready]):
            try:
                analyses = list(
                    ctx.analyzer.analyze_all(
                        [item.path for item in ready if item.path is not None],
                        [item.hashes for item in ready],
                        local_features=local,
                    )
                )
            except Exception as exc:  # a bug in one file's analysis: each file on its own
                unexpected(exc, "a batch analysis (retried file by file)")
                analyses = [_analyze_alone(ctx, item, local) for item in ready]
            for item, analysis in zip(ready, analyses, strict=True):
                results[item.media_id] = _record(ctx, item, analysis)
    finally:
        for item in ready:
            if item.path is not None and item.spooled:
                item.path.unlink(missing_ok=True)
    return results


def _analyze_alone(ctx: TaskContext, item: _Claimed, local: bool) -> MediaAnalysis:
    """One file's analysis; whatever it raises is that file's error."""
    assert item.path is not None
    try:
        (analysis,) = ctx.analyzer.analyze_all([item.path], [item.hashes], local_features=local)
    except Exception as exc:
        analysis = MediaAnalysis(hashes=item.hashes, error=unexpected(exc, "analysis", MediaError))
    return analysis


def _record(ctx: TaskContext, item: _Claimed, analysis: MediaAnalysis) -> ScanOutcome | None:
    """Store the analysis, match it, release the row; one unit of work."""
    app = ctx.app
    try:
        with app.work(ctx.actor) as work:
            media = work.session.get(Media, item.media_id)
            if media is None or not holds(media, ctx.owner):
                return None  # the lease ran out and another worker took the row over
            store_media(work, None, analysis)
            matches: list[StoredMatch] = []
            if media.status == MediaStatus.SCANNED:
                matches = store_matches(work, media, app.matcher.match(analysis))
            else:
                work.session.execute(
                    update(Sighting)
                    .where(Sighting.media_id == media.id, Sighting.error.is_(None))
                    .values(error=media.error)
                )
                work.session.execute(
                    update(UrlState)
                    .where(UrlState.sha256 == media.sha256, UrlState.status == "ok")
                    .values(status="failed", error=media.error)
                )
                if media.blob_address is not None:
                    # Least data kept: what could not be scanned keeps its hashes, not its bytes.
                    address, media.blob_address = media.blob_address, None
                    work.after_commit(lambda: app.blobs.delete(address))
            release(media)
            work.audit(
                "media.scanned",
                "media",
                media.id,
                {
                    "error": analysis.error.code if analysis.error else None,
                    "matches": len(matches),
                },
            )
        return ScanOutcome(item.media_id, analysis, matches)
    except Exception as exc:  # its database work was rolled back; tried again later
        _failed(ctx, item.media_id, error_text(exc, "recording a scan"))
        return None


@task("match_media", max_attempts=3, batch=SCAN_BATCH)
def match_media(ctx: TaskContext, media_ids: list[int]) -> Results:
    """Match scanned media again from its stored signals (it was seen again somewhere)."""
    app = ctx.app
    results: Results = {}
    with app.db.session(read_only=True) as session:
        app.matcher.refresh(session)
    for media_id in media_ids:
        try:
            with app.work(ctx.actor) as work:
                ready = Media.status == MediaStatus.SCANNED
                media = ctx.claim(work.session, Media, media_id, ready)
                if media is None:
                    results[media_id] = None
                    continue
                analysis = stored_analysis(app, media)
                matches = store_matches(work, media, app.matcher.match(analysis))
                release(media)
            results[media_id] = ScanOutcome(media_id, analysis, matches, reused=True)
        except Exception as exc:
            log.warning("matching media %s failed: %s", media_id, error_text(exc, "matching"))
            results[media_id] = None
    return results


def _failed(ctx: TaskContext, media_id: int, error: str) -> None:
    """A try failed for a reason outside the media: again after a backoff, or for good."""
    with ctx.app.work(ctx.actor) as work:
        media = work.session.get(Media, media_id)
        if media is None or not holds(media, ctx.owner):
            return
        delay = give_back(media, error, TASKS["scan_media"].max_attempts)
        if delay is None:
            move(media, MediaStatus.FAILED)
            return
    ctx.runner.submit("scan_media", media_id, delay=delay)


def _spool(ctx: TaskContext, address: str) -> Path:
    """The blob's plaintext in a private temporary file (0600, in a 0700 folder)."""
    app = ctx.app
    folder = process_temp_dir(app.settings.ensure_data_dir())
    fd, name = tempfile.mkstemp(prefix="scan-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in app.blobs.iter_plaintext(address, app.keys.media):
                out.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)
