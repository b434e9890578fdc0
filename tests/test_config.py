"""Settings: defaults, the generated master key, and the environment contract."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from safeeye.config import Settings
from safeeye.errors import ConfigError


def test_master_key_is_generated_once_with_private_permissions(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    key = settings.load_master_key()
    path = tmp_path / "data" / "master.key"
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings(data_dir=tmp_path / "data").load_master_key() == key


def test_master_key_from_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = bytes(range(32))
    monkeypatch.setenv("SAFEEYE_MASTER_KEY", base64.b64encode(given).decode())
    monkeypatch.setenv("SAFEEYE_DATA_DIR", str(tmp_path))
    assert Settings().load_master_key() == given
    assert not (tmp_path / "master.key").exists()


def test_a_malformed_master_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        Settings(
            data_dir=tmp_path, master_key=base64.b64encode(b"short").decode()
        ).load_master_key()


def test_defaults_use_sqlite_in_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.data_dir == Path("./safeeye-data")
    assert settings.database.startswith("sqlite:///") and settings.database.endswith(
        "safeeye-data/safeeye.db"
    )
    assert settings.pdq_threshold == 31 and settings.face_distance == pytest.approx(0.6)


def test_fetch_allowlist_is_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEEYE_FETCH_ALLOWLIST", "127.0.0.1, 10.0.0.0/8,localhost")
    assert Settings().fetch_allowlist == ("127.0.0.1", "10.0.0.0/8", "localhost")
