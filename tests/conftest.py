"""Shared fixtures: settings in a temp dir, the app on SQLite or PostgreSQL, models loaded once."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from safeeye.app import SafeEye
from safeeye.config import Settings
from safeeye.pipeline.detectors import Detectors
from safeeye.work import Actor

FIXTURES = Path(__file__).parent / "fixtures"
FACES = FIXTURES / "faces"
VIDEO = FIXTURES / "video" / "short_hamilton_clip.mp4"
T = TypeVar("T")
POSTGRES_URL = os.environ.get(
    "SAFEEYE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_reason() -> str | None:
    import psycopg

    url = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(url, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return (
            f"PostgreSQL not reachable at {POSTGRES_URL} ({exc.__class__.__name__}); "
            "start it with scripts/services"
        )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A URL to a fresh schema in the test PostgreSQL database (skips when none is reachable)."""
    reason = _postgres_reason()
    if reason:
        pytest.skip(reason)
    yield POSTGRES_URL


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="session")
def detectors(tmp_path_factory: pytest.TempPathFactory) -> Detectors:
    """The real models, loaded once for the whole test session."""
    loaded = Detectors.from_settings(Settings(data_dir=tmp_path_factory.mktemp("models")))
    loaded.load()
    return loaded


def make_settings(data_dir: Path, database_url: str | None = None, **extra: object) -> Settings:
    """Settings for a test; scans run inline on the session's shared models (no time or memory
    budget) unless a test asks for ``analysis_isolation="process"`` (then one worker process
    unless it asks for more ``scan_workers``)."""
    extra.setdefault("analysis_isolation", "inline")
    extra.setdefault("scan_workers", 1)
    return Settings(data_dir=data_dir, database_url=database_url, actor="test", **extra)


#: Who acts in tests: an operator at the console (every role).
TESTER = Actor.operator("test")


def make_app(
    settings: Settings, detectors: Detectors | None = None, *, init: bool = True
) -> SafeEye:
    """The service for a test, set up (``init``) unless asked otherwise."""
    app = SafeEye(settings)
    if init:
        app.init()
    if detectors is not None:
        app.__dict__["detectors"] = detectors  # share the session's loaded models
    return app


def act(app: SafeEye, service: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a domain service as the CLI does: in a unit of work of its own, as the tester."""
    return app.call(TESTER, service, *args, **kwargs)


@pytest.fixture
def app(tmp_path: Path, detectors: Detectors) -> Iterator[SafeEye]:
    """The service on SQLite in a temp dir, with the shared models."""
    safe = make_app(make_settings(tmp_path / "data"), detectors)
    yield safe
    safe.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_db_app(
    request: pytest.FixtureRequest, tmp_path: Path, detectors: Detectors
) -> Iterator[SafeEye]:
    """The service on each database backend in turn."""
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_schema")
    safe = make_app(make_settings(tmp_path / "data", url), detectors)
    yield safe
    safe.close()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Says where the browser tests put their screenshots."""
    from webtools import SCREENSHOTS

    for folder in sorted(config.stash.get(SCREENSHOTS, set())):
        terminalreporter.write_line(f"screenshots of the workbench: {folder}")
