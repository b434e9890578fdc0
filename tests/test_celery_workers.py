"""Many processes, one code path: real `safeeye worker` processes (Celery) on this machine's
PostgreSQL and Redis (and RabbitMQ) discover and scan a local site together."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import FACES, act, make_app, make_settings
from hostile_server import HostileServer
from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, create_case
from safeeye.config import Settings
from safeeye.db.models import AuditEvent, Match, Media, NamedLease, UrlState
from safeeye.db.states import MediaStatus
from safeeye.ingest.service import add_source
from safeeye.pipeline.detectors import Detectors
from synthetic_media import video
from test_monitor_leases import noise_jpeg

pytestmark = pytest.mark.slow

REDIS = "redis://127.0.0.1:6379/0"
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
HOST_INTERVAL = 0.15


def _broker_reachable(url: str) -> str | None:
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"broker not reachable at {url} ({type(exc).__name__}); start it (scripts/services)"
    return None


def _site(tmp_path: Path, noise: int) -> tuple[HostileServer, list[str], set[str]]:
    """A page showing ``noise`` faceless photos, two photos of the case's person and two
    videos long enough that a worker can be killed while it scans one (their SHA-256s)."""
    server = HostileServer()
    paths = []
    videos = set()
    for i in range(noise):
        server.add(f"/img/{i}.jpg", noise_jpeg(i), content_type="image/jpeg")
        paths.append(f"/img/{i}.jpg")
    for name in ("obama2.jpg", "obama3.jpg"):
        server.add(f"/img/{name}", (FACES / name).read_bytes(), content_type="image/jpeg")
        paths.append(f"/img/{name}")
    for seconds in (70, 80):
        clip = video(tmp_path / f"clip{seconds}.mp4", seconds).read_bytes()
        videos.add(hashlib.sha256(clip).hexdigest())
        server.add(f"/vid/{seconds}.mp4", clip, content_type="video/mp4")
        paths.append(f"/vid/{seconds}.mp4")
    links = "".join(
        f'<video src="{p}"></video>' if p.endswith(".mp4") else f'<img src="{p}">' for p in paths
    )
    server.add("/", f"<html><body>{links}</body></html>".encode(), content_type="text/html")
    return server.start(), paths, videos


def _settings(data: Path, database_url: str, broker: str) -> Settings:
    return make_settings(
        data,
        database_url,
        broker_url=broker,
        queue=f"test-{uuid.uuid4().hex[:8]}",
        fetch_allowlist=("127.0.0.1",),
        fetch_host_interval=HOST_INTERVAL,
        task_lease_seconds=8,
        analysis_isolation="process",
    )


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEEYE_")}
    env.update(
        SAFEEYE_DATA_DIR=str(settings.data_dir),
        SAFEEYE_DATABASE_URL=settings.database,
        SAFEEYE_BROKER_URL=settings.broker_url,
        SAFEEYE_QUEUE=settings.queue,
        SAFEEYE_FETCH_ALLOWLIST="127.0.0.1",
        SAFEEYE_FETCH_HOST_INTERVAL=str(HOST_INTERVAL),
        SAFEEYE_TASK_LEASE_SECONDS=str(settings.task_lease_seconds),
        SAFEEYE_SCAN_WORKERS="1",
        SAFEEYE_ACTOR="worker",
    )
    return env


def _start_workers(settings: Settings, count: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    workers = []
    for n in range(count):
        log = open(logs / f"worker{n}.log", "wb")  # noqa: SIM115 - closed with the process
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", "from safeeye.cli import app; app()", "worker"],
                env=_env(settings),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return workers


@pytest.fixture
def workers_cleanup() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _counts(app: SafeEye) -> tuple[int, int, int]:
    with app.db.session(read_only=True) as session:
        media = session.scalar(select(func.count()).select_from(Media)) or 0
        pending = session.scalar(
            select(func.count()).select_from(Media).where(Media.status == MediaStatus.PENDING)
        )
        queued = session.scalar(
            select(func.count()).select_from(UrlState).where(UrlState.status == "pending")
        )
    return media, pending or 0, queued or 0


def _wait_until_scanned(
    app: SafeEye, expected: int, timeout: float, on_poll: object = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(on_poll):
            on_poll()
        media, pending, queued = _counts(app)
        if media >= expected and pending == 0 and queued == 0:
            return
        time.sleep(0.2)
    with app.db.session(read_only=True) as session:
        states = session.execute(
            select(UrlState.location, UrlState.status, UrlState.error, UrlState.lease_owner)
        ).all()
        media = session.execute(select(Media.id, Media.status, Media.lease_owner)).all()
    unfinished = [s for s in states if s.status != "ok"]
    waiting = [m for m in media if m.status != MediaStatus.SCANNED]
    pytest.fail(
        f"not everything was scanned in {timeout:g} s: {_counts(app)}; "
        f"URL states not ok: {unfinished}; media not scanned: {waiting}"
    )


def _worker_holding_a_video(app: SafeEye, videos: set[str]) -> int | None:
    """The pid of a worker that is scanning one of ``videos`` right now."""
    with app.db.session(read_only=True) as session:
        owner = session.execute(
            select(Media.lease_owner).where(
                Media.status == MediaStatus.PENDING,
                Media.lease_owner.is_not(None),
                Media.sha256.in_(videos),
            )
        ).scalar()
    return int(owner.split(":")[1]) if owner else None


def test_two_workers_share_a_site_and_one_killed_mid_scan_loses_nothing(
    tmp_path: Path,
    postgres_schema: str,
    detectors: Detectors,
    workers_cleanup: list[subprocess.Popen[bytes]],
) -> None:
    if reason := _broker_reachable(REDIS):
        pytest.skip(reason)
    settings = _settings(tmp_path / "data", postgres_schema, REDIS)
    app = make_app(settings, detectors)
    act(app, create_case, "CASE-W")
    act(app, add_faces, "CASE-W", [FACES / "obama.jpg"])
    server, paths, videos = _site(tmp_path, noise=50)
    killed: list[int] = []
    try:
        workers = _start_workers(settings, 2, tmp_path)
        workers_cleanup.extend(workers)
        pids = {w.pid for w in workers}
        act(app, add_source, "url", server.url("/"))  # due now, visited once

        def kill_one_mid_scan() -> None:
            if killed:
                return
            pid = _worker_holding_a_video(app, videos)
            if pid in pids:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        _wait_until_scanned(app, len(paths), timeout=300, on_poll=kill_one_mid_scan)
        requests = [r for r in server.requests() if r.path.startswith(("/img/", "/vid/"))]
    finally:
        server.stop()
    assert killed, "no worker was caught scanning a video"
    with app.db.session(read_only=True) as session:
        media = session.execute(select(Media)).scalars().all()
        assert len(media) == len(paths)
        assert {m.status for m in media} == {MediaStatus.SCANNED}
        # Each media scanned once (recorded once, the killed worker recorded nothing) ...
        scans = session.execute(
            select(AuditEvent.object_id, func.count())
            .where(AuditEvent.action == "media.scanned")
            .group_by(AuditEvent.object_id)
        ).all()
        assert sorted(int(object_id) for object_id, _ in scans) == sorted(m.id for m in media)
        assert {n for _, n in scans} == {1}
        # ... and the media the killed worker held was taken over and finished by the other.
        assert max(m.attempts for m in media) >= 2
        # Each match recorded once: obama2 and obama3 are the case's person.
        matches = session.execute(select(Match)).scalars().all()
        created = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "match.created")
        )
        assert len(matches) == created == 2
        assert session.get(NamedLease, "scheduler") is not None
        assert app.audit.verify(session).ok
    # Both workers fetched from the site, and together kept its per-host interval.
    starts = sorted(r.at for r in requests)
    assert len(starts) >= len(paths)
    gaps = [b - a for a, b in pairwise(starts)]
    assert min(gaps) >= HOST_INTERVAL * 0.8, min(gaps)


def test_workers_on_rabbitmq_scan_a_site_too(
    tmp_path: Path,
    postgres_schema: str,
    detectors: Detectors,
    workers_cleanup: list[subprocess.Popen[bytes]],
) -> None:
    if reason := _broker_reachable(RABBITMQ):
        pytest.skip(reason)
    settings = _settings(tmp_path / "data", postgres_schema, RABBITMQ)
    app = make_app(settings, detectors)
    act(app, create_case, "CASE-R")
    act(app, add_faces, "CASE-R", [FACES / "obama.jpg"])
    server = HostileServer().start()
    try:
        for i in range(8):
            server.add(f"/img/{i}.jpg", noise_jpeg(i), content_type="image/jpeg")
        server.add("/img/o.jpg", (FACES / "obama3.jpg").read_bytes(), content_type="image/jpeg")
        links = "".join(f'<img src="/img/{i}.jpg">' for i in [*range(8), "o"])
        server.add("/", f"<html>{links}</html>".encode(), content_type="text/html")
        workers_cleanup.extend(_start_workers(settings, 2, tmp_path))
        act(app, add_source, "url", server.url("/"))
        _wait_until_scanned(app, 9, timeout=240)
    finally:
        server.stop()
    with app.db.session(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Match)) == 1
