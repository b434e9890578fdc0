"""``safeeye notices``, ``safeeye recheck`` and ``safeeye report``: deletion requests from draft
to verified removal, and each recipient's record."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from safeeye.commands.common import JsonOpt, actor, app_for, call, emit, fail, plain, say
from safeeye.errors import SafeEyeError, ValidationError

notices_app = typer.Typer(
    no_args_is_help=True, help="Notices: deletion requests, drafted, approved, sent, followed."
)
report_app = typer.Typer(no_args_is_help=True, help="Reports: accountability figures.")


def _table(notices: list[Any]) -> None:
    table = Table("id", "case", "recipient", "status", "lang", "url", "batch", "deadline")
    for n in notices:
        table.add_row(
            str(n.id),
            plain(n.case),
            plain(n.recipient),
            n.status,
            n.language,
            plain(n.url),
            str(n.batch_id or "-"),
            (n.deadline_at or "-")[:16],
        )
    Console().print(table)


@notices_app.command("draft")
def notices_draft(
    case: Annotated[str | None, typer.Option(help="Only this case's confirmed matches.")] = None,
    evidence: Annotated[
        bool, typer.Option("--evidence/--no-evidence", help="Build evidence packages first.")
    ] = True,
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to",
            help="Also this recipient (its key; repeatable), e.g. stopncii to share the "
            "files' hashes where the victim consented.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write notices for every confirmed match that still needs them, in draft batches."""
    from safeeye.takedown.drafting import draft_notices

    report = call(as_json, draft_notices, case=case, evidence=evidence, to=to)
    if as_json:
        emit(asdict(report))
        return
    say(
        f"{len(report.notices)} notices drafted in batches {report.batches or '-'}; "
        f"{report.already} existed; {report.skipped_allowed} sightings are the victim's own"
    )
    _table(report.notices)


@notices_app.command("list")
def notices_list(
    status: Annotated[str | None, typer.Option(help="draft, approved, sent, removed...")] = None,
    case: Annotated[str | None, typer.Option(help="Only this case.")] = None,
    batch: Annotated[int | None, typer.Option(help="Only this batch.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Notices, newest first."""
    from safeeye.takedown.reports import list_notices

    found = call(
        as_json, list_notices, status=status, case=case, batch=batch, limit=limit, read_only=True
    )
    if as_json:
        emit([asdict(n) for n in found])
    else:
        _table(found)


@notices_app.command("batches")
def notices_batches(
    status: Annotated[str | None, typer.Option(help="draft, approved, sent...")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Batches of notices, newest first."""
    from safeeye.takedown.dispatch import list_batches

    found = call(as_json, list_batches, status, read_only=True)
    if as_json:
        emit([asdict(b) for b in found])
        return
    for b in found:
        say(f"batch {b.id} to {b.recipient} ({b.connector}): {b.status}, {b.notices} notices")


@notices_app.command("send")
def notices_send(
    batch: Annotated[
        list[int] | None, typer.Option(help="Approve and send this batch (repeatable).")
    ] = None,
    approved: Annotated[
        bool, typer.Option("--approved", help="Send every batch approved so far.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Approve the named draft batches and send them, or send every approved batch; through
    the outbox, so a repeat after a crash sends nothing twice."""
    from safeeye.takedown.dispatch import approve_batch, queue_approved
    from safeeye.tasks.runner import InProcessRunner

    if not batch and not approved:
        fail(
            ValidationError("name a batch (--batch ID) or send the approved ones (--approved)"),
            as_json,
        )
    for batch_id in batch or []:
        call(as_json, approve_batch, batch_id)
    safe = app_for()
    runner = InProcessRunner(safe, actor())
    try:
        with safe.work(actor()) as work:
            ids = [b for b in (batch or [])] if not approved else queue_approved(work, runner)
        if not approved:
            for batch_id in ids:
                runner.submit("dispatch_batch", batch_id)
        results = runner.drain()
    except SafeEyeError as exc:
        fail(exc, as_json)
    finally:
        runner.close()
    sent = {key[1]: value for key, value in results.items() if key[0] == "dispatch_batch"}
    if as_json:
        emit({"batches": sent})
        return
    for batch_id, outcome in sent.items():
        say(f"batch {batch_id}: {outcome}")


@notices_app.command("status")
def notices_status(notice_id: int, as_json: JsonOpt = False) -> None:
    """One notice: where it stands, its rechecks and the recipient's answers."""
    from safeeye.takedown.reports import notice_story

    story = call(as_json, notice_story, notice_id, read_only=True)
    if as_json:
        emit(asdict(story))
        return
    n = story.notice
    say(f"notice {n.id} to {n.recipient}: {n.status} (sent {n.sent_at or '-'}, ")
    say(f"deadline {n.deadline_at or '-'}, removed {n.removed_at or '-'})")
    for check in story.rechecks:
        say(f"  checked {check['checked_at']}: {check['result']}")
    for answer in story.answers:
        say(f"  answered {answer['at']}: {answer['kind']} {answer['reason'] or ''}")


@notices_app.command("answer")
def notices_answer(
    notice_id: int,
    kind: Annotated[str, typer.Option(help="acknowledged, removed, refused, more_info or other.")],
    reason: Annotated[str | None, typer.Option(help="What the recipient said.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record what a recipient answered (a removal is verified by a recheck)."""
    from safeeye.takedown.follow_up import record_answer

    call(as_json, record_answer, notice_id, kind, reason)
    emit({"notice": notice_id, "answer": kind}) if as_json else say(f"recorded: {kind}")


@notices_app.command("overdue")
def notices_overdue(as_json: JsonOpt = False) -> None:
    """Sent notices past their deadline whose content is still up."""
    from safeeye.takedown.follow_up import overdue_notices

    found = call(as_json, overdue_notices, read_only=True)
    if as_json:
        emit([asdict(n) for n in found])
    else:
        _table(found)


def recheck(
    once: Annotated[bool, typer.Option("--once", help="Check what is due now, then stop.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Fetch the URLs of sent notices that are due again: removed, still there (reminders,
    escalation past the deadline)."""
    from safeeye.takedown.follow_up import due_rechecks
    from safeeye.tasks.runner import InProcessRunner

    safe = app_for()
    runner = InProcessRunner(safe, actor())
    try:
        with safe.db.session(read_only=True) as session:
            for notice_id in due_rechecks(session):
                runner.submit("recheck_notice", notice_id)
        results = runner.drain()
    finally:
        runner.close()
    checks = [asdict(v) for k, v in results.items() if k[0] == "recheck_notice" and v]
    if as_json:
        emit({"rechecks": checks})
        return
    for check in checks:
        say(f"notice {check['notice_id']}: {check['result']} -> {check['action']}")


@report_app.command("removal-times")
def report_removal_times(
    since: Annotated[datetime | None, typer.Option(help="From (ISO date).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Until (ISO date).")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Also write a CSV sheet.")] = None,
    pdf_file: Annotated[
        Path | None, typer.Option("--pdf", help="Also write a PDF transparency report.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Per recipient: notices, the share removed, median and 90th-percentile hours to removal."""
    from safeeye.takedown.reports import figures_csv, removal_times

    figures = call(as_json, removal_times, _utc(since), _utc(until), read_only=True)
    if csv_file is not None:
        csv_file.write_text(figures_csv(figures))
    if pdf_file is not None:
        from safeeye.takedown.transparency import write_report

        write_report(app_for().settings, figures, pdf_file, since=since, until=until)
    if as_json:
        emit([asdict(f) for f in figures])
        return
    table = Table("recipient", "notices", "removed", "share", "median h", "p90 h", "overdue")
    for f in figures:
        table.add_row(
            plain(f.recipient),
            str(f.notices),
            str(f.removed),
            f"{f.removed_share:.0%}",
            f"{f.median_hours_to_removal}" if f.median_hours_to_removal is not None else "-",
            f"{f.p90_hours_to_removal}" if f.p90_hours_to_removal is not None else "-",
            str(f.overdue),
        )
    Console().print(table)


def _utc(value: datetime | None) -> datetime | None:
    from datetime import UTC

    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
