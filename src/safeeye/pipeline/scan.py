"""Scanning inputs end to end: analyse, store, match, audit; one result per input, in order."""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from safeeye.app import SafeEye
from safeeye.db.models import Media
from safeeye.db.states import MediaStatus
from safeeye.errors import MediaError, error_text
from safeeye.pipeline.analyze import MediaAnalysis
from safeeye.pipeline.pool import ProcessAnalyzer
from safeeye.pipeline.record import SightingFacts, Stored, StoredMatch, store_file
from safeeye.signals.hashes import hash_file
from safeeye.tasks.pipeline import ScanOutcome
from safeeye.tasks.runner import InProcessRunner
from safeeye.work import Actor

log = logging.getLogger(__name__)


@dataclass
class MatchReport:
    case: str
    kind: str
    distance: float
    frames: list[float]
    frame_count: int
    match_id: int
    new: bool


@dataclass
class ScanResult:
    """The outcome of scanning one input: the ``scan --json`` object."""

    input: str
    sha256: str | None = None
    media_type: str | None = None
    format: str | None = None
    faces: int = 0
    sexual_score: float = 0.0
    sexual: bool = False  # sexual_score at or above SAFEEYE_SEXUAL_THRESHOLD
    error: str | None = None
    matches: list[MatchReport] = field(default_factory=list)
    frames_analyzed: int = 0
    duration: float | None = None
    media_id: int | None = None
    sighting_id: int | None = None
    reused: bool = False
    new_sighting: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    # Every registered signal's short summary by name (None where it had no value).
    signals: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["sexual_score"] = round(self.sexual_score, 4)
        data["timings"] = {k: round(v, 4) for k, v in self.timings.items()}
        return data


class Scanner:
    """Scans files for the app, through the pipeline's tasks: each file is stored first (blob
    and media row), then scanned by ``scan_media`` (or, when its content was scanned before,
    matched again by ``match_media``) on the in-process runner. Analysis runs in supervised
    worker processes (up to ``workers``, started as files need them and kept between calls),
    or inline in this process when the settings ask for it (tests and debugging)."""

    def __init__(
        self, app: SafeEye, *, workers: int | None = None, actor: Actor | None = None
    ) -> None:
        self.app = app
        self.actor = actor or Actor.system("scanner")
        if workers is not None and workers != app.settings.scan_workers:
            app = _with_workers(app, workers)
        self.runner = InProcessRunner(app, self.actor)

    def close(self) -> None:
        """Stop the analysis worker processes, if any were started."""
        self.runner.close()

    def warm_up(self) -> None:
        """Load the models now (in every worker process, unless analysis runs inline)."""
        self.runner.context.warm_up()

    def scan_paths(
        self, paths: list[Path], facts: list[SightingFacts] | None = None
    ) -> list[ScanResult]:
        """Scan each path; one file's failure (bad media, or an exception while hashing,
        storing, analysing or recording it) is that file's error, and the others get results."""
        facts = facts or [SightingFacts(location=str(p)) for p in paths]
        analyzer = self.runner.context.analyzer
        if isinstance(analyzer, ProcessAnalyzer):
            analyzer.prestart(len(paths))  # models load while files are hashed and stored
        results: list[ScanResult | None] = [None] * len(paths)
        taken: dict[int, Stored] = {}
        for i, path in enumerate(paths):
            problem = _unreadable(path)
            if problem is not None:
                results[i] = ScanResult(input=str(path), error=problem.as_text())
                continue
            try:
                hashes = hash_file(path)
            except Exception as exc:
                results[i] = ScanResult(input=str(path), error=error_text(exc, "scan"))
                continue
            try:
                stored = self.app.call(self.actor, store_file, path, hashes, facts[i])
            except Exception as exc:  # its database work was rolled back; the others go on
                self._drop_unowned_blob(hashes.sha256)
                results[i] = ScanResult(
                    input=str(path), sha256=hashes.sha256, error=error_text(exc, "scan")
                )
                continue
            if stored.media_id is None:
                results[i] = ScanResult(
                    input=str(path),
                    sha256=hashes.sha256,
                    error="empty: the file is empty (0 bytes)",
                    sighting_id=stored.sighting_id,
                    new_sighting=stored.new_sighting,
                )
                continue
            taken[i] = stored
            if stored.media_status == MediaStatus.PENDING:
                self.runner.context.offer_local_copy(stored.media_id, path)
            task = "scan_media" if stored.media_status == MediaStatus.PENDING else "match_media"
            self.runner.submit(task, stored.media_id)
        outcomes = self.runner.drain()
        for i, stored in taken.items():
            assert stored.media_id is not None
            outcome = outcomes.get(("scan_media", stored.media_id)) or outcomes.get(
                ("match_media", stored.media_id)
            )
            results[i] = self._result(paths[i], stored, outcome)
        return [r for r in results if r is not None]

    def _drop_unowned_blob(self, sha256: str) -> None:
        """A blob written for content whose media row was rolled back is not kept."""
        with self.app.db.session(read_only=True) as session:
            if session.execute(select(Media.id).where(Media.sha256 == sha256)).first():
                return
        self.app.blobs.delete(self.app.blobs.address("media", sha256))

    def _result(self, path: Path, stored: Stored, outcome: ScanOutcome | None) -> ScanResult:
        if outcome is None:  # another worker holds this content right now, or it failed before
            with self.app.db.session(read_only=True) as session:
                media = session.get(Media, stored.media_id)
                error = (media.error if media else None) or "busy: another worker is scanning it"
                sha256 = media.sha256 if media else None
            result = ScanResult(input=str(path), sha256=sha256, error=error)
        else:
            result = _result_of(str(path), outcome.analysis, self.app.settings.sexual_threshold)
            result.reused = outcome.reused
            result.matches = sorted(
                (_report(m) for m in outcome.matches), key=lambda m: (m.case, m.kind)
            )
        result.media_id = stored.media_id
        result.sighting_id = stored.sighting_id
        result.new_sighting = stored.new_sighting
        return result

    def scan_inputs(self, inputs: list[str]) -> list[ScanResult]:
        """Scan files and URLs (fetched safely first); one result per input, in input order."""
        from safeeye.ingest.fetcher import Fetcher
        from safeeye.ingest.policy import fetch_policy

        paths: list[Path] = []
        facts: list[SightingFacts] = []
        failed: dict[int, ScanResult] = {}
        fetched_files = []
        with Fetcher(fetch_policy(self.app.settings)) as fetcher:
            try:
                for i, item in enumerate(inputs):
                    if not item.lower().startswith(("http://", "https://")):
                        paths.append(Path(item))
                        facts.append(SightingFacts(location=item))
                        continue
                    try:
                        # A person asked for this one URL: robots.txt (for crawlers) does not apply.
                        fetched = fetcher.fetch(item, want="media", obey_robots=False)
                    except Exception as exc:
                        failed[i] = ScanResult(input=item, error=error_text(exc, "fetch"))
                        continue
                    fetched_files.append(fetched)
                    assert fetched.path is not None
                    paths.append(fetched.path)
                    facts.append(
                        SightingFacts(
                            location=item,
                            final_url=fetched.final_url,
                            http_status=fetched.status,
                            http_headers=fetched.headers,
                            server_ip=fetched.server_ip,
                            evidence={
                                "redirects": fetched.redirects,
                                "bytes": fetched.size,
                                "fetched_at": fetched.fetched_at.isoformat(),
                                "declared_type": fetched.content_type,
                            },
                        )
                    )
                scanned = iter(self.scan_paths(paths, facts))
                results = [failed[i] if i in failed else next(scanned) for i in range(len(inputs))]
                for item, result in zip(inputs, results, strict=True):
                    result.input = item
                return results
            finally:
                for fetched in fetched_files:
                    fetched.unlink()


def _report(stored: StoredMatch) -> MatchReport:
    c = stored.candidate
    return MatchReport(
        stored.case_code,
        c.kind,
        round(c.distance, 4),
        c.frame_times,
        c.frame_count,
        stored.match_id,
        stored.new,
    )


def _with_workers(app: SafeEye, workers: int) -> SafeEye:
    """The app with another number of analysis workers (``scan --workers``)."""
    clone = copy.copy(app)
    clone.settings = app.settings.model_copy(update={"scan_workers": workers})
    return clone


def _result_of(input_: str, analysis: MediaAnalysis, sexual_threshold: float) -> ScanResult:
    info = analysis.info
    return ScanResult(
        input=input_,
        sha256=analysis.hashes.sha256,
        media_type=info.media_type if info else None,
        format=info.format if info else None,
        faces=analysis.face_count,
        sexual_score=analysis.sexual_score,
        sexual=analysis.sexual_score >= sexual_threshold,
        error=analysis.error.as_text() if analysis.error else None,
        frames_analyzed=len(analysis.frames),
        duration=info.duration if info else None,
        timings=dict(analysis.timings),
        signals=analysis.summaries(),
    )


def _unreadable(path: Path) -> MediaError | None:
    if not path.exists():
        return MediaError("no such file", code="not_found")
    if path.is_dir():
        return MediaError("a directory, not a file", code="not_a_file")
    if not path.is_file():  # opening a named pipe would wait for a writer forever
        return MediaError("not a regular file (a pipe, device or socket)", code="not_a_file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        return MediaError(f"cannot be read ({exc.strerror})", code="unreadable")
    return None
