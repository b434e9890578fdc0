"""Signed audit checkpoints outside the database: an emptied log, a rollback to an earlier copy
and a forged checkpoint are caught; the witness receives each checkpoint."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from conftest import act, make_app, make_settings
from safeeye import cli
from safeeye.app import SafeEye
from safeeye.audit import Checkpoint, read_checkpoint
from safeeye.cases.service import create_case, purge_case


def _verify(app: SafeEye, extra: list[Checkpoint] | None = None):  # type: ignore[no-untyped-def]
    with app.db.session(read_only=True) as session:
        return app.audit.verify(session, extra)


def _events(app: SafeEye) -> int:
    return int(_verify(app).verified)


def test_each_commit_leaves_a_signed_checkpoint_outside_the_database(app: SafeEye) -> None:
    before = _events(app)  # what init recorded
    act(app, create_case, "CP-1")
    act(app, create_case, "CP-2")
    kept = read_checkpoint(app.settings.audit_checkpoint_path)
    assert kept.seq == kept.count == before + 2
    assert kept.signed_by(app.audit.public_key)
    assert _verify(app).ok


def test_an_emptied_log_fails_while_data_exists(any_db_app: SafeEye) -> None:
    app = any_db_app
    act(app, create_case, "CP-EMPTY")
    app.audit.checkpoints = None  # even without the checkpoint file: the data gives it away
    with app.db.session() as session:
        session.execute(text("DELETE FROM audit_events"))
        session.execute(text("DELETE FROM audit_head"))
    report = _verify(app)
    assert not report.ok and "empty" in report.message and "1 cases" in report.message


def test_an_untouched_empty_installation_verifies(app: SafeEye) -> None:
    assert _verify(app).ok


def test_a_rollback_to_an_earlier_copy_fails(app: SafeEye, tmp_path: Path) -> None:
    """The database file is put back as it was before a purge: chain and head MAC are intact,
    but the signed checkpoint written after the purge shows the database is behind."""
    act(app, create_case, "CP-A")
    act(app, create_case, "CP-B")
    db_file = Path(app.settings.database.removeprefix("sqlite:///"))
    app.db.flush_deleted()
    app.db.dispose()
    shutil.copy(db_file, tmp_path / "before.db")
    act(app, purge_case, "CP-B")
    app.db.dispose()
    shutil.copy(tmp_path / "before.db", db_file)
    Path(f"{db_file}-wal").unlink(missing_ok=True)
    restored = make_app(app.settings)
    try:
        report = _verify(restored)
        assert not report.ok and "behind the checkpoint" in report.message
    finally:
        restored.close()


def test_a_rewritten_log_disagrees_with_the_checkpoint(app: SafeEye) -> None:
    """An insider with the keys rebuilds a consistent chain (valid hashes, valid head MAC) that
    leaves out what happened: only the checkpoint kept outside shows it."""
    act(app, create_case, "CP-R1")
    act(app, create_case, "CP-R2")
    kept = app.audit.checkpoints
    app.audit.checkpoints = None  # the rewrite leaves the checkpoint file alone
    with app.db.session() as session:
        session.execute(text("DELETE FROM audit_events"))
        session.execute(text("DELETE FROM audit_head"))
        for n in range(3):
            app.audit.append(session, "insider", "case.created", "case", n)
    app.audit.checkpoints = kept
    report = _verify(app)
    assert not report.ok and "differs from the checkpoint" in report.message


def test_a_forged_checkpoint_is_refused(app: SafeEye, tmp_path: Path) -> None:
    act(app, create_case, "CP-F")
    other = make_app(make_settings(tmp_path / "other"))  # another installation's audit key
    try:
        forged = other.audit.sign(1, "0" * 64, 1)
    finally:
        other.close()
    report = _verify(app, [forged])
    assert not report.ok and "not signed by this installation" in report.message


def test_cli_exports_a_checkpoint_that_verify_checks(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(cli._state, "app", app)
    act(app, create_case, "CP-CLI")
    head = _events(app)
    runner = CliRunner()
    out = tmp_path / "for-the-auditor.json"
    result = runner.invoke(cli.app, ["audit", "checkpoint", "--output", str(out), "--json"])
    assert result.exit_code == 0, result.output
    exported = json.loads(result.stdout)
    assert exported["seq"] == head and read_checkpoint(out).signed_by(app.audit.public_key)
    ok = runner.invoke(cli.app, ["audit", "verify", "--checkpoint", str(out), "--json"])
    assert ok.exit_code == 0, ok.output
    with app.db.session() as session:  # the tail is cut and the head row put back to match
        session.execute(text("DELETE FROM audit_events WHERE id >= 1"))
        session.execute(text("DELETE FROM audit_head"))
    app.settings.audit_checkpoint_path.unlink()  # the local file is lost too
    for n in range(head):  # data exists, the log restarts at 1 and reaches the same length
        act(app, create_case, f"CP-AGAIN-{n}")
    broken = runner.invoke(cli.app, ["audit", "verify", "--checkpoint", str(out), "--json"])
    assert broken.exit_code == 1
    assert "differs from the checkpoint" in json.loads(broken.stdout)["message"]


class _Witness(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Witness.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_witness() -> Iterator[str]:
    _Witness.received = []
    server = HTTPServer(("127.0.0.1", 0), _Witness)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/checkpoints"
    server.shutdown()


def test_checkpoints_reach_an_http_witness(
    tmp_path: Path, http_witness: str, detectors: Any
) -> None:
    app = make_app(make_settings(tmp_path / "data", audit_witness=http_witness), detectors)
    try:
        act(app, create_case, "W-1")  # the first checkpoint goes out at once
        act(app, purge_case, "W-1")  # a purge is always witnessed at once
        last = _events(app)
    finally:
        app.close()
    seqs = [c["seq"] for c in _Witness.received]
    assert seqs[0] == 1 and seqs[-1] == last
    assert Checkpoint.from_json(_Witness.received[-1]).signed_by(app.audit.public_key)


def test_checkpoints_reach_a_syslog_witness(tmp_path: Path, detectors: Any) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    app = make_app(
        make_settings(tmp_path / "data", audit_witness=f"syslog://127.0.0.1:{port}"), detectors
    )
    try:
        act(app, create_case, "S-1")
        message = listener.recv(65536).decode()
    finally:
        app.close()
        listener.close()
    assert "safeeye audit checkpoint" in message
    body = json.loads(message.split("safeeye audit checkpoint ", 1)[1].rstrip("\x00"))
    assert Checkpoint.from_json(body).signed_by(app.audit.public_key)
