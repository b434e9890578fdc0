"""Start-up without side effects: building the service touches nothing; `safeeye init` sets a
data dir up once, even when several processes start on a new one at the same moment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from conftest import make_settings
from safeeye.app import SafeEye
from safeeye.errors import ConfigError
from safeeye.keyring import SERVICE_KEYS
from safeeye.takedown.recipients import shipped_entries

REDIS = "redis://127.0.0.1:6379/0"


def test_building_the_service_creates_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    app = SafeEye(settings)
    assert not (tmp_path / "data").exists()
    with pytest.raises(ConfigError, match="safeeye init"):
        _ = app.keys
    report = app.init()
    assert report.created_master_key and report.migrated
    assert report.service_keys_created == len(SERVICE_KEYS)
    assert report.recipients_added == len(shipped_entries())
    again = SafeEye(settings).init()
    assert not again.created_master_key and not again.migrated
    assert again.service_keys_created == 0 and again.recipients_added == 0


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from safeeye.cli import app; app()", *args]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_command_a_worker_and_init_started_together_on_a_new_data_dir(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    from test_celery_workers import _broker_reachable

    if reason := _broker_reachable(REDIS):
        pytest.skip(reason)
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEEYE_")}
    env.update(
        SAFEEYE_DATA_DIR=str(data),
        SAFEEYE_BROKER_URL=REDIS,
        SAFEEYE_QUEUE=f"test-{uuid.uuid4().hex[:8]}",
        SAFEEYE_ANALYSIS_ISOLATION="inline",
    )
    url = None
    if database == "postgres":
        url = request.getfixturevalue("postgres_schema")
        env["SAFEEYE_DATABASE_URL"] = url
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(_cli("worker"), env=env, stdout=log, stderr=subprocess.STDOUT)
    commands = [
        subprocess.Popen(_cli(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for args in (("init", "--json"), ("case", "list", "--json"))
    ]
    try:
        outputs = [c.communicate(timeout=180) for c in commands]
        assert [c.returncode for c in commands] == [0, 0], outputs
        deadline = time.monotonic() + 120
        while b"ready" not in (tmp_path / "worker.log").read_bytes():
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker never got ready"
            time.sleep(0.2)
        assert worker.poll() is None  # it started on the same new data dir without a crash
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        log.close()
    assert sorted(p.name for p in data.glob("master.key*")) == ["master.key"]
    settings = make_settings(data, url)
    engine = create_engine(settings.database)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            keys = conn.execute(text("SELECT count(*) FROM service_keys")).scalar_one()
    finally:
        engine.dispose()
    assert len(versions) == 1 and keys == len(SERVICE_KEYS)
    report = SafeEye(settings).init()  # migrated once, to the newest revision
    assert not report.migrated and report.schema_now == versions[0][0]
