"""The command line: ``safeeye case|scan|audit|demo``; every command also speaks ``--json``."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from safeeye.commands import notices as notices_commands
from safeeye.commands import review as review_commands
from safeeye.commands.common import JsonOpt, console, plain, visible
from safeeye.commands.common import actor as _actor
from safeeye.commands.common import app_for as _app
from safeeye.commands.common import call as _call
from safeeye.commands.common import emit as _emit
from safeeye.commands.common import fail as _fail
from safeeye.commands.common import say as _say
from safeeye.commands.common import state as _state
from safeeye.commands.evidence import evidence_app
from safeeye.commands.notices import notices_app, report_app
from safeeye.commands.recipients import recipients_app
from safeeye.commands.review import review_app
from safeeye.commands.serve import serve
from safeeye.commands.users import user_app
from safeeye.config import Settings
from safeeye.errors import SafeEyeError, ValidationError

app = typer.Typer(
    no_args_is_help=True, help="safeeye: find a victim's images online and get them deleted."
)
case_app = typer.Typer(no_args_is_help=True, help="Cases: register victims and their references.")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")
source_app = typer.Typer(no_args_is_help=True, help="Sources: the places safeeye watches.")
app.add_typer(case_app, name="case")
app.add_typer(audit_app, name="audit")
app.add_typer(source_app, name="source")
key_app = typer.Typer(no_args_is_help=True, help="The master key that wraps every other key.")
app.add_typer(key_app, name="key")
matches_app = typer.Typer(no_args_is_help=True, help="Matches: found media linked to a case.")
app.add_typer(matches_app, name="matches")
sightings_app = typer.Typer(no_args_is_help=True, help="Sightings: where media were seen.")
app.add_typer(sightings_app, name="sightings")
app.add_typer(review_app, name="review")
app.add_typer(evidence_app, name="evidence")
app.add_typer(notices_app, name="notices")
app.add_typer(recipients_app, name="recipients")
app.add_typer(report_app, name="report")
app.add_typer(user_app, name="user")
app.command("recheck")(notices_commands.recheck)
app.command("serve")(serve)
case_app.command("allow")(review_commands.allow)
case_app.command("allowlist")(review_commands.allowlist)
case_app.command("disallow")(review_commands.disallow)


@app.callback()
def main(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Overrides SAFEEYE_DATA_DIR.")
    ] = None,
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file", help="Settings file (default: SAFEEYE_ENV_FILE, else DATA_DIR/.env)."
        ),
    ] = None,
) -> None:
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    _state["settings"] = Settings.load(env_file, **overrides)
    # The key now lives in the settings object only: worker processes and anything else this
    # process starts do not inherit it.
    os.environ.pop("SAFEEYE_MASTER_KEY", None)


@app.command("init")
def init(as_json: JsonOpt = False) -> None:
    """Set up the data dir and the database: master key, schema, service keys. Safe to run
    again, and when several processes start at once; the other commands run it themselves."""
    _app()
    report = _state.get("init")
    if as_json:
        _emit(asdict(report) if report is not None else {})
        return
    if report is None:
        return
    _say(f"data dir {report.data_dir}")
    if report.created_master_key:
        _say(("new master key", "bold"), f" in {report.data_dir}/master.key: back it up apart")
    schema = f"{report.schema_before or 'new'} -> {report.schema_now}"
    _say(f"schema {schema}" if report.migrated else f"schema up to date ({report.schema_now})")


@app.command("worker")
def worker(
    schedule: Annotated[
        bool, typer.Option("--schedule/--no-schedule", help="Offer to run the scheduler too.")
    ] = True,
    loglevel: Annotated[str, typer.Option(help="Celery's log level.")] = "INFO",
) -> None:
    """Run tasks from the broker (SAFEEYE_BROKER_URL) as a Celery worker, on the database of
    SAFEEYE_DATABASE_URL; start as many as the machines allow. One of them schedules."""
    import socket

    from safeeye.tasks.celery_engine import run_worker
    from safeeye.work import Actor

    run_worker(
        _app(), Actor.system(f"worker:{socket.gethostname()}"), schedule=schedule, loglevel=loglevel
    )


@case_app.command("create")
def case_create(
    code: str,
    consent: Annotated[
        str | None, typer.Option(help="The basis of consent, e.g. 'signed SOS intake form'.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a victim under a pseudonymous CODE (never a name)."""
    from safeeye.cases.service import create_case

    case = _call(as_json, create_case, code, consent)
    if as_json:
        _emit({"id": case.id, "code": case.code, "status": case.status, "consent": consent})
    else:
        _say("case ", (visible(case.code), "bold"), " created")


def _print_outcomes(outcomes: list[Any], as_json: bool) -> None:
    if as_json:
        _emit([asdict(o) for o in outcomes])
        return
    for o in outcomes:
        if o.error:
            _say(("✗", "red"), f" {o.input}: {o.error}")
        else:
            extra = f" ({o.note})" if o.note else ""
            _say(("✓", "green"), f" {o.input}: reference {o.reference_id}{extra}")


@case_app.command("add-face")
def case_add_face(
    code: str,
    photos: Annotated[list[Path], typer.Argument(help="Face reference photos.")],
    as_json: JsonOpt = False,
) -> None:
    """Add face reference photos of the victim to case CODE."""
    from safeeye.cases.service import add_faces

    outcomes = _call(as_json, add_faces, code, photos)
    _print_outcomes(outcomes, as_json)
    if all(o.error for o in outcomes):
        raise typer.Exit(1)


@case_app.command("add-known")
def case_add_known(
    code: str,
    media: Annotated[list[Path], typer.Argument(help="Known images or videos of the victim.")],
    as_json: JsonOpt = False,
) -> None:
    """Add known original images or videos to case CODE (matched by exact and perceptual hash)."""
    from safeeye.cases.service import add_known

    outcomes = _call(as_json, add_known, code, media)
    _print_outcomes(outcomes, as_json)
    if all(o.error for o in outcomes):
        raise typer.Exit(1)


@case_app.command("list")
def case_list(as_json: JsonOpt = False) -> None:
    """List every case with its reference and match counts."""
    from safeeye.cases.service import list_cases

    cases = _call(as_json, list_cases, read_only=True)
    if as_json:
        _emit([asdict(c) for c in cases])
        return
    table = Table("code", "status", "faces", "known", "matches", "created")
    for c in cases:
        table.add_row(
            plain(c.code),
            plain(c.status),
            str(c.face_references),
            str(c.known_references),
            str(c.matches),
            c.created_at[:19],
        )
    Console().print(table)


@case_app.command("rematch")
def case_rematch(
    code: Annotated[
        str | None, typer.Argument(help="Only this case (default: every case).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Match everything scanned so far against the case's references (after adding some)."""
    from safeeye.pipeline.rematch import rematch_archive

    report = _call(as_json, rematch_archive, code)
    if as_json:
        _emit(asdict(report))
    else:
        _say(f"{report.media_checked} media checked, {report.new_matches} new matches")


@case_app.command("purge")
def case_purge(
    code: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Destroy case CODE's key, references, embeddings and the media no other case needs."""
    from safeeye.cases.service import purge_case

    if not yes and not as_json and not typer.confirm(f"Purge case {code}? This cannot be undone"):
        raise typer.Exit(1)
    report = _call(as_json, purge_case, code)
    counts = {"references": report.references, "blobs": report.blobs, "media": report.media}
    if as_json:
        _emit({"code": code, "status": "purged", **counts})
    else:
        _say(f"case {code} purged: {counts}")


@app.command("scan")
def scan(
    inputs: Annotated[list[str], typer.Argument(help="Files (or URLs) to scan.")],
    as_json: JsonOpt = False,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: one per core).")
    ] = None,
) -> None:
    """Scan images and videos: hashes, faces, sexual content; match them against every case."""
    from safeeye.pipeline.scan import Scanner

    scanner = Scanner(_app(), workers=workers, actor=_actor())
    try:
        results = scanner.scan_inputs(inputs)
    finally:
        scanner.close()
    if as_json:
        _emit([r.to_json() for r in results])
        return
    table = Table("input", "type", "faces", "sexual", "matches", "error")
    for r in results:
        matches = ", ".join(f"{m.case}:{m.kind}@{m.distance:g}" for m in r.matches) or "-"
        table.add_row(
            plain(r.input),
            plain(r.media_type or "-"),
            str(r.faces),
            f"{r.sexual_score:.2f}",
            plain(matches),
            plain(r.error or ""),
        )
    Console().print(table)


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(help="Also check against this exported checkpoint (repeatable)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the whole chain and the signed checkpoints; exit 1 naming what is wrong (an edited,
    removed or reordered event, an emptied log, a database rolled back behind a checkpoint)."""
    from safeeye.audit import read_checkpoint, verify_log

    try:
        extra = [read_checkpoint(path) for path in checkpoint or []]
    except ValueError as exc:
        _fail(ValidationError(str(exc)), as_json)
    report = _call(as_json, verify_log, extra, read_only=True)
    if as_json:
        _emit(asdict(report))
    elif report.ok:
        _say(("ok", "green"), f" {report.message}")
    else:
        _say(("BROKEN", "red"), f" first broken event: {report.first_broken}: {report.message}")
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(
    output: Annotated[
        Path | None, typer.Option(help="Also write the checkpoint to this file, for an auditor.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign a checkpoint of the log as it is now (kept outside the database and sent to the
    witness); an auditor who keeps it can later show the log was not rolled back."""
    from safeeye.audit import export_checkpoint

    made = _call(as_json, export_checkpoint)
    data = made.to_json()
    if output is not None:
        output.write_text(json.dumps(data, indent=2) + "\n")
    if as_json:
        _emit(data)
    else:
        _say(f"checkpoint of event {made.seq} ({made.count} events) signed at {made.at}")
        _say(f"audit public key: {made.public_key}")
        if output is not None:
            _say("written to ", visible(str(output)))


@key_app.command("rotate")
def key_rotate(
    output: Annotated[
        Path | None,
        typer.Option(help="Where to write the new key when SAFEEYE_MASTER_KEY holds the old one."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-wrap every key under a new master key and destroy the old key file; backups made
    before stay sealed under the old key, so once it is gone they cannot be opened."""
    from safeeye.keyring import rotate_master_key

    try:
        report = rotate_master_key(_app(), _actor(), output)
    except SafeEyeError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit(asdict(report))
    else:
        _say(
            f"master key rotated: {report.service_keys} service keys and {report.case_keys} "
            f"case keys re-wrapped; new key {report.key_location}"
        )


def _visit_now(source_id: int) -> Any:
    from safeeye.ingest.monitor import Monitor

    monitor = Monitor(_app(), actor=_actor())
    try:
        return monitor.visit(source_id, now_anyway=True)
    finally:
        monitor.close()


def _print_visits(reports: list[Any], as_json: bool) -> None:
    if as_json:
        _emit({"visits": [r.to_json() for r in reports], "totals": _totals(reports)})
        return
    table = Table(
        "source",
        "kind",
        "status",
        "pages",
        "media",
        "new",
        "unchanged",
        "failed",
        "matches",
        "seconds",
    )
    for r in reports:
        table.add_row(
            str(r.source_id),
            plain(r.kind),
            plain(r.status),
            str(r.pages),
            str(r.media_found),
            str(r.media_new),
            str(r.unchanged),
            str(r.failures),
            str(r.matches),
            f"{r.seconds:.1f}",
        )
    Console().print(table)
    for r in reports:
        for m in r.new_matches:
            where = f" on {m.page_url}" if m.page_url and m.page_url != m.location else ""
            _say(
                (f"match {m.match_id}", "green"),
                f" {m.case} {m.kind}@{m.distance:g}: {m.location}{where}",
            )
        for error in r.errors[:5]:
            _say((f"source {r.source_id}", "yellow"), f" {error}")


def _totals(reports: list[Any]) -> dict[str, int]:
    keys = ("pages", "media_found", "media_new", "unchanged", "failures", "matches")
    return {k: sum(getattr(r, k) for r in reports) for k in keys}


@source_app.command("add")
def source_add(
    target: Annotated[
        str,
        typer.Argument(help="A URL (page or media), a local folder or a Telegram export folder."),
    ],
    crawl: Annotated[bool, typer.Option("--crawl", help="Crawl the site from this URL.")] = False,
    depth: Annotated[
        int | None, typer.Option(help="Crawl depth (links from the start page; default 3).")
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="Path pattern of the links a crawl follows (repeatable), e.g. '/gallery/**'; "
            "the start URL is always visited."
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Path pattern of links not to follow (repeatable).")
    ] = None,
    every: Annotated[
        str | None, typer.Option(help="Visit again after this long: 30s, 10m, 2h, 1d.")
    ] = None,
    max_pages: Annotated[
        int | None, typer.Option(help="Pages a crawl fetches per visit at most (default 500).")
    ] = None,
    no_robots: Annotated[
        bool, typer.Option("--no-robots", help="Ignore robots.txt (only with a legal basis).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Watch a URL, a whole site (--crawl), a local folder or a Telegram export folder."""
    from safeeye.ingest.service import add_watch, parse_interval

    try:
        interval = parse_interval(every) if every else None
    except SafeEyeError as exc:
        _fail(exc, as_json)
    given = {"depth": depth, "max_pages": max_pages, "include": scope, "exclude": exclude}
    config: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    if no_robots:
        config["obey_robots"] = False
    source = _call(
        as_json, add_watch, target, crawl=crawl, config=config, interval_seconds=interval
    )
    if as_json:
        _emit(
            {
                "id": source.id,
                "kind": source.kind,
                "locator": source.locator,
                "interval_seconds": source.interval_seconds,
                "config": source.config,
            }
        )
    else:
        _say(f"source {source.id} ({source.kind}) added: {source.locator}")


@source_app.command("import-telegram")
def source_import_telegram(
    export_dir: Annotated[Path, typer.Argument(help="The folder Telegram Desktop exported.")],
    username: Annotated[
        list[str] | None, typer.Option(help="CHAT_ID=username of a public chat (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a Telegram Desktop chat export (JSON): scan every photo and video in it now."""
    from safeeye.ingest.service import add_source

    if any("=" not in item for item in username or []):
        _fail(ValidationError("--username takes CHAT_ID=username"), as_json)
    usernames = dict(item.split("=", 1) for item in username or [])
    source = _call(
        as_json,
        add_source,
        "telegram",
        str(export_dir),
        config={"usernames": usernames},
        due=False,  # read here and now: a worker on another machine could not open the folder
    )
    try:
        report = _visit_now(source.id)
    except SafeEyeError as exc:
        _fail(exc, as_json)
    _print_visits([report] if report else [], as_json)


@source_app.command("upload")
def source_upload(
    files: Annotated[list[Path] | None, typer.Argument(help="Files to scan.")] = None,
    url_list: Annotated[
        Path | None, typer.Option("--urls", help="A text file with one URL per line.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Hand in files and URLs directly; they are fetched, scanned and kept as sightings."""
    from safeeye.ingest.service import add_source

    urls = []
    if url_list is not None:
        urls = [
            line.strip()
            for line in url_list.read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
    config = {"files": [str(f.resolve()) for f in files or []], "urls": urls}
    # Read here and now: a worker on another machine could not open these files.
    source = _call(as_json, add_source, "upload", "upload", config=config, due=False)
    try:
        report = _visit_now(source.id)
    except SafeEyeError as exc:
        _fail(exc, as_json)
    _print_visits([report] if report else [], as_json)


@source_app.command("list")
def source_list(as_json: JsonOpt = False) -> None:
    """Every source with when it is due and what its last visit found."""
    from safeeye.ingest.service import list_sources

    sources = _call(as_json, list_sources, read_only=True)
    if as_json:
        _emit([asdict(s) for s in sources])
        return
    table = Table("id", "kind", "what", "every", "next due", "last", "sightings")
    for s in sources:
        table.add_row(
            str(s.id),
            plain(s.kind),
            plain(s.description),
            f"{s.interval_seconds}s" if s.interval_seconds else "once",
            (s.next_due_at or "-")[:19],
            plain(s.last_status or "-"),
            str(s.sightings),
        )
    Console().print(table)


LimitOpt = Annotated[int, typer.Option("--limit", help="Show at most this many (newest first).")]
BeforeOpt = Annotated[
    int | None, typer.Option("--before", help="The next page: ids below this one.")
]


@matches_app.command("list")
def matches_list(
    case: Annotated[str | None, typer.Option("--case", help="Only this case's matches.")] = None,
    limit: LimitOpt = 100,
    before: BeforeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Matches, newest first: case, kind, distance and threshold, the file, where it was seen."""
    from safeeye.review.matches import list_matches

    matches = _call(as_json, list_matches, case=case, limit=limit, before=before, read_only=True)
    if as_json:
        _emit([asdict(m) for m in matches])
        return
    table = Table("match", "case", "kind", "distance", "type", "sha256", "seen at", "last seen")
    for m in matches:
        where = _chat_or_location(m.sightings[0]) if m.sightings else "-"
        more = f" (+{m.sightings_total - 1})" if m.sightings_total > 1 else ""
        limit_text = f" / {m.threshold:g}" if m.threshold is not None else ""
        table.add_row(
            str(m.match_id),
            plain(m.case),
            plain(m.kind),
            f"{m.distance:g}{limit_text}",
            plain(m.media_type or "-"),
            m.sha256[:12],
            plain(f"{where}{more}"),
            (m.last_seen or "-")[:19],
        )
    Console().print(table)


def _chat_or_location(sighting: Any) -> str:
    """A Telegram sighting's chat and message, else its URL."""
    if sighting.chat:
        return f"{sighting.chat} #{sighting.message_id}"
    return str(sighting.location)


@sightings_app.command("list")
def sightings_list(
    limit: LimitOpt = 100,
    before: BeforeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sightings, newest first: where each file was seen, when, and the cases it matches."""
    from safeeye.ingest.sightings import list_sightings

    sightings = _call(as_json, list_sightings, limit=limit, before=before, read_only=True)
    if as_json:
        _emit([asdict(s) for s in sightings])
        return
    table = Table("sighting", "type", "location", "page or chat", "first seen", "seen", "cases")
    for s in sightings:
        context = f"{s.chat} #{s.message_id}" if s.chat else s.page_url or "-"
        table.add_row(
            str(s.sighting_id),
            plain(s.media_type or "-"),
            plain(s.location),
            plain(context),
            s.first_seen[:19],
            str(s.times_seen),
            plain(", ".join(s.cases) or "-"),
        )
    Console().print(table)


@app.command("discover")
def discover(
    once: Annotated[bool, typer.Option("--once", help="Visit what is due now, then stop.")] = False,
    follow_up: Annotated[
        bool,
        typer.Option(
            "--follow-up/--no-follow-up",
            help="While watching, also send approved batches, recheck sent notices and report "
            "re-uploads (leave it to Celery workers where they run).",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Visit every due source, fetch new media, scan and match it; keeps running unless --once,
    and meanwhile follows up on deletion requests."""
    import signal
    import threading

    from safeeye.ingest.monitor import Monitor
    from safeeye.tasks.scheduler import follow_up_in_process

    safe = _app()
    monitor = Monitor(safe, actor=_actor())
    try:
        if once:
            _print_visits(monitor.run_once(), as_json)
            return
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        if follow_up:
            threading.Thread(
                target=follow_up_in_process,
                args=(safe, _actor(), stop),
                name="follow-up",
                daemon=True,
            ).start()
        if not as_json:
            console.print("watching sources; Ctrl-C stops")

        def show(report: Any) -> None:
            if as_json:
                sys.stdout.write(json.dumps(report.to_json(), default=str) + "\n")
                sys.stdout.flush()
            else:
                _print_visits([report], False)

        monitor.run_forever(stop, on_visit=show)
    finally:
        monitor.close()


@app.command("demo")
def demo(as_json: JsonOpt = False) -> None:
    """Register a demo case from the fixture photos and scan the fixture photos and video."""
    from safeeye.demo import run_demo

    _emit(run_demo(_app(), _actor())) if as_json else run_demo(_app(), _actor(), Console())


if __name__ == "__main__":  # pragma: no cover
    app()
