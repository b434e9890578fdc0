"""Keys: the master key wraps every key; rotation re-wraps them and leaves old backups dead; a
missing key beside an existing database is an error; every blob has its own key."""

from __future__ import annotations

import base64
import os
import shutil
import stat
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from conftest import FACES, TESTER, act, make_app, make_settings
from safeeye import cli
from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, create_case
from safeeye.config import Settings, read_key_file
from safeeye.crypto import new_data_key
from safeeye.db.models import Case, Reference
from safeeye.errors import ConfigError
from safeeye.keyring import SERVICE_KEYS, pending_key_path, rotate_master_key
from safeeye.storage import LEGACY_MAGIC, BlobStore


def _sqlite_file(app: SafeEye) -> Path:
    return Path(app.settings.database.removeprefix("sqlite:///"))


def _reference_bytes(app: SafeEye) -> bytes:
    with app.db.session(read_only=True) as session:
        ref = session.execute(select(Reference)).scalars().first()
        assert ref is not None
        case = session.get(Case, ref.case_id)
        assert case is not None
        return app.blobs.get_bytes(ref.blob_address, app.keys.case_key(case))


def test_rotation_rewraps_every_key_and_the_data_stays_readable(
    app: SafeEye, tmp_path: Path
) -> None:
    act(app, create_case, "ROT-1", "intake form")
    act(app, add_faces, "ROT-1", [FACES / "obama.jpg"])
    old_key = read_key_file(app.settings.master_key_path)
    app.db.flush_deleted()
    backup = tmp_path / "backup.db"
    shutil.copy(_sqlite_file(app), backup)  # a backup made before the rotation

    report = rotate_master_key(app, TESTER)

    assert report.case_keys == 1 and report.service_keys == len(SERVICE_KEYS)
    new_key = read_key_file(app.settings.master_key_path)
    assert new_key != old_key and not pending_key_path(app.settings.master_key_path).exists()
    assert _reference_bytes(app) == (FACES / "obama.jpg").read_bytes()
    again = make_app(app.settings)  # a restart with the new key file reads everything
    try:
        assert _reference_bytes(again) == (FACES / "obama.jpg").read_bytes()
        with again.db.session(read_only=True) as session:
            assert again.audit.verify(session).ok
    finally:
        again.close()
    # The old backup does not open with the key the installation holds now.
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(backup, restored / "safeeye.db")
    shutil.copy(app.settings.master_key_path, restored / "master.key")
    with pytest.raises(ConfigError, match="does not open"):
        make_app(make_settings(restored))


def test_an_interrupted_rotation_is_finished_at_the_next_start(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    act(app, create_case, "ROT-2")
    act(app, add_faces, "ROT-2", [FACES / "obama.jpg"])
    import safeeye.keyring as keyring

    def crash(*_args: object) -> None:
        raise KeyboardInterrupt  # killed after the commit, before the key file was replaced

    monkeypatch.setattr(keyring, "replace_key_file", crash)
    with pytest.raises(KeyboardInterrupt):
        rotate_master_key(app, TESTER)
    monkeypatch.undo()
    assert pending_key_path(app.settings.master_key_path).exists()
    restarted = make_app(app.settings)
    try:
        assert _reference_bytes(restarted) == (FACES / "obama.jpg").read_bytes()
        assert not pending_key_path(app.settings.master_key_path).exists()
    finally:
        restarted.close()


def test_a_key_from_the_environment_rotates_into_a_named_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = new_data_key()
    settings = make_settings(tmp_path / "data", master_key=base64.b64encode(old).decode())
    app = make_app(settings)
    try:
        act(app, create_case, "ROT-ENV")
        with pytest.raises(ConfigError, match="--output"):
            rotate_master_key(app, TESTER)
        monkeypatch.setitem(cli._state, "app", app)
        out = tmp_path / "new.key"
        result = CliRunner().invoke(cli.app, ["key", "rotate", "--output", str(out), "--json"])
        assert result.exit_code == 0, result.output
        assert stat.S_IMODE(out.stat().st_mode) == 0o600 and read_key_file(out) != old
    finally:
        app.close()


def test_a_missing_master_key_beside_an_existing_database_is_an_error(app: SafeEye) -> None:
    act(app, create_case, "KEY-LOST")
    app.close()
    app.settings.master_key_path.unlink()
    with pytest.raises(ConfigError, match="missing but the database exists"):
        make_app(app.settings)
    assert not app.settings.master_key_path.exists()  # no new key was made


def test_data_dir_database_and_key_are_private_whatever_existed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    app = make_app(make_settings(data))
    try:
        act(app, create_case, "PRIV-1")
        act(app, add_faces, "PRIV-1", [FACES / "obama.jpg"])
    finally:
        app.close()
    _sqlite_file(app).chmod(0o644)
    make_app(app.settings).close()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE(_sqlite_file(app).stat().st_mode) == 0o600
    assert stat.S_IMODE(app.settings.master_key_path.stat().st_mode) == 0o600
    for path in app.settings.blob_dir.rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_every_blob_has_its_own_key_and_old_blobs_stay_readable(tmp_path: Path) -> None:
    key = new_data_key()
    store = BlobStore(tmp_path / "blobs", new_data_key())
    first = store.put_bytes(b"A" * 5000, key, "media")
    second = store.put_bytes(b"A" * 4999 + b"B", key, "media")
    one, two = store.path(first).read_bytes(), store.path(second).read_bytes()
    # Same key, nearly the same plaintext: with per-blob keys the ciphertexts share nothing.
    assert one[11:200] != two[11:200]
    assert store.get_bytes(first, key) == b"A" * 5000
    # A blob written before per-blob keys (SEB1: the caller's key itself) is still read.
    from safeeye import storage

    legacy = store.address("media", "0" * 64)
    path = store.path(legacy)
    path.parent.mkdir(parents=True, exist_ok=True)
    monkey = pytest.MonkeyPatch()
    monkey.setattr(storage, "MAGIC", LEGACY_MAGIC)
    monkey.setattr(storage, "blob_key", lambda k, _address: k)
    try:
        store._write(storage.iter_chunks_bytes(b"old content"), key, legacy)
    finally:
        monkey.undo()
    assert path.read_bytes().startswith(LEGACY_MAGIC)
    assert store.get_bytes(legacy, key) == b"old content"


def test_dotenv_is_read_only_from_the_data_dir_or_a_given_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAFEEYE_ENV_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("SAFEEYE_PDQ_THRESHOLD=5\n")  # planted where a command runs
    data = tmp_path / "data"
    data.mkdir()
    assert Settings.load(data_dir=data).pdq_threshold == 31
    (data / ".env").write_text("SAFEEYE_PDQ_THRESHOLD=7\n")
    assert Settings.load(data_dir=data).pdq_threshold == 7
    given = tmp_path / "given.env"
    given.write_text("SAFEEYE_PDQ_THRESHOLD=9\n")
    assert Settings.load(given, data_dir=data).pdq_threshold == 9
    monkeypatch.setenv("SAFEEYE_ENV_FILE", str(given))
    assert Settings.load(data_dir=data).pdq_threshold == 9
    monkeypatch.setenv("SAFEEYE_ENV_FILE", str(tmp_path / "missing.env"))
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(data_dir=data)
    assert os.getcwd() == str(tmp_path)
