"""Scanning inputs end to end: analyse, store, match, audit; one result per input, in order."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safeeye.app import SafeEye
from safeeye.errors import MediaError, error_text
from safeeye.pipeline.analyze import MediaAnalysis
from safeeye.pipeline.pool import Analyzer, InlineAnalyzer, ProcessAnalyzer
from safeeye.pipeline.record import (
    SightingFacts,
    find_scanned_media,
    store_matches,
    store_media,
    store_sighting,
    stored_analysis,
)
from safeeye.signals.hashes import ContentHashes, hash_file
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
    """Scans files for the app. Analysis runs in supervised worker processes (up to
    ``workers``, started as files need them and kept between calls), or inline in this process
    when the settings ask for it (``analysis_isolation="inline"``: tests and debugging)."""

    def __init__(
        self, app: SafeEye, *, workers: int | None = None, actor: Actor | None = None
    ) -> None:
        self.app = app
        self.actor = actor or Actor.system("scanner")
        self.workers = workers if workers is not None else app.settings.scan_workers
        self._workers: ProcessAnalyzer | None = None

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        if self._workers is not None:
            self._workers.close()
            self._workers = None

    def warm_up(self) -> None:
        """Load the models now (in every worker process, unless analysis runs inline)."""
        analyzer = self._analyzer()
        if isinstance(analyzer, ProcessAnalyzer):
            analyzer.warm_up()
        else:
            self.app.detectors.load()

    def _analyzer(self) -> Analyzer:
        if self.app.settings.analysis_isolation == "inline":
            return InlineAnalyzer(self.app.settings, self.app.detectors)
        if self._workers is None:
            self._workers = ProcessAnalyzer(self.app.settings, self.workers or None)
        return self._workers

    def scan_paths(
        self, paths: list[Path], facts: list[SightingFacts] | None = None
    ) -> list[ScanResult]:
        """Scan each path; one file's failure (bad media, or an exception while hashing,
        analysing or recording it) is that file's error, and the others get their results."""
        facts = facts or [SightingFacts(location=str(p)) for p in paths]
        analyzer = self._analyzer()
        if isinstance(analyzer, ProcessAnalyzer):
            analyzer.prestart(len(paths))  # models load while files are hashed and looked up
        with self.app.db.session() as session:  # once per call: today's references
            self.app.matcher.refresh(session)
        results: list[ScanResult | None] = [None] * len(paths)
        todo: list[tuple[int, ContentHashes]] = []
        for i, path in enumerate(paths):
            problem = _unreadable(path)
            if problem is not None:
                results[i] = ScanResult(input=str(path), error=problem.as_text())
                continue
            try:
                hashes = hash_file(path)
                known = self._reuse(path, hashes, facts[i])
            except Exception as exc:
                results[i] = ScanResult(input=str(path), error=error_text(exc, "scan"))
                continue
            if known is not None:
                results[i] = known
            else:
                todo.append((i, hashes))
        analyses = analyzer.analyze_all(
            [paths[i] for i, _ in todo],
            [h for _, h in todo],
            local_features=self._known_images_indexed(),
        )
        for (i, hashes), analysis in zip(todo, analyses, strict=True):
            try:
                results[i] = self._record(paths[i], analysis, facts[i])
            except Exception as exc:  # its database work was rolled back; the others go on
                results[i] = ScanResult(
                    input=str(paths[i]), sha256=hashes.sha256, error=error_text(exc, "scan")
                )
        return [r for r in results if r is not None]

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

    def _known_images_indexed(self) -> bool:
        """Whether any case has known images to find by local features (else skip ORB)."""
        return len(self.app.matcher.local) > 0

    def _reuse(self, path: Path, hashes: ContentHashes, facts: SightingFacts) -> ScanResult | None:
        """Content scanned before is not analysed again: a new sighting, matched afresh."""
        with self.app.db.session() as session:
            media = find_scanned_media(session, hashes.sha256)
            if media is None:
                return None
            analysis = stored_analysis(self.app, media)
        result = self._record(path, analysis, facts)
        result.reused = True
        return result

    def _record(self, path: Path, analysis: MediaAnalysis, facts: SightingFacts) -> ScanResult:
        app = self.app
        result = _result_of(str(path), analysis, app.settings.sexual_threshold)
        with app.work(self.actor) as work:
            session = work.session
            media = store_media(work, path, analysis)
            sighting = store_sighting(session, media, analysis, facts)
            result.sighting_id = sighting.id
            result.new_sighting = sighting.times_seen == 1
            if media is not None:
                result.media_id = media.id
            if media is not None and media.status == "scanned":
                for stored in store_matches(work, media, app.matcher.match(analysis)):
                    c = stored.candidate
                    result.matches.append(
                        MatchReport(
                            stored.case_code,
                            c.kind,
                            round(c.distance, 4),
                            c.frame_times,
                            c.frame_count,
                            stored.match_id,
                            stored.new,
                        )
                    )
            work.audit(
                "media.scanned",
                "sighting",
                sighting.id,
                {
                    "media": result.media_id,
                    "error": analysis.error.code if analysis.error else None,
                    "matches": len(result.matches),
                },
            )
        result.matches.sort(key=lambda m: (m.case, m.kind))
        return result


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
