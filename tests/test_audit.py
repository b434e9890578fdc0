"""The audit log: every state change is chained; any edit, deletion or reordering is reported."""

from __future__ import annotations

from sqlalchemy import select, text, update
from typer.testing import CliRunner

from safeeye import cli
from safeeye.app import SafeEye
from safeeye.db.models import AuditEvent


def _append(app: SafeEye, n: int) -> None:
    with app.db.session() as session:
        for i in range(n):
            app.audit.append(session, "tester", "thing.done", "thing", i, {"n": i, "note": "ü"})


def _verify(app: SafeEye):  # type: ignore[no-untyped-def]
    with app.db.session() as session:
        return app.audit.verify(session)


def test_untouched_log_verifies(any_db_app: SafeEye) -> None:
    before = _verify(any_db_app).verified  # what init recorded
    _append(any_db_app, 5)
    report = _verify(any_db_app)
    assert report.ok and report.verified == before + 5 and report.first_broken is None


def test_edited_event_is_named(any_db_app: SafeEye) -> None:
    _append(any_db_app, 5)
    with any_db_app.db.session() as session:
        session.execute(update(AuditEvent).where(AuditEvent.id == 3).values(actor="mallory"))
    report = _verify(any_db_app)
    assert not report.ok and report.first_broken == 3 and "edited" in report.message


def test_deleted_event_is_named(any_db_app: SafeEye) -> None:
    _append(any_db_app, 5)
    with any_db_app.db.session() as session:
        session.execute(text("DELETE FROM audit_events WHERE id = 2"))
    report = _verify(any_db_app)
    assert not report.ok and report.first_broken == 3


def test_reordered_events_are_named(any_db_app: SafeEye) -> None:
    _append(any_db_app, 5)
    with any_db_app.db.session() as session:
        rows = {e.id: e for e in session.execute(select(AuditEvent)).scalars()}
        two, three = rows[2], rows[3]
        fields = (
            "at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "details",
            "prev_hash",
            "hash",
        )
        a = {f: getattr(two, f) for f in fields}
        b = {f: getattr(three, f) for f in fields}
        session.execute(update(AuditEvent).where(AuditEvent.id == 2).values(hash="x" * 64))
        session.execute(update(AuditEvent).where(AuditEvent.id == 3).values(**a))
        session.execute(update(AuditEvent).where(AuditEvent.id == 2).values(**b))
    report = _verify(any_db_app)
    assert not report.ok and report.first_broken == 2


def test_removed_tail_is_reported(any_db_app: SafeEye) -> None:
    _append(any_db_app, 4)
    with any_db_app.db.session() as session:
        session.execute(
            text("DELETE FROM audit_events WHERE id = (SELECT MAX(id) FROM audit_events)")
        )
    report = _verify(any_db_app)
    assert not report.ok and "removed" in report.message


def test_cli_verify_exits_non_zero_naming_the_first_broken_event(app: SafeEye, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(cli._state, "app", app)
    _append(app, 3)
    runner = CliRunner()
    assert runner.invoke(cli.app, ["audit", "verify"]).exit_code == 0
    with app.db.session() as session:
        session.execute(update(AuditEvent).where(AuditEvent.id == 2).values(details={"n": 99}))
    result = runner.invoke(cli.app, ["audit", "verify", "--json"])
    assert result.exit_code == 1
    assert '"first_broken": 2' in result.stdout


def test_sqlite_runs_in_wal_mode(app: SafeEye) -> None:
    with app.db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
