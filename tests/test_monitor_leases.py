"""One writer per visit: monitors sharing a database never visit one source at once, a working
visit keeps its source by renewing its lease, and a stalled one loses it and records nothing."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from conftest import act, make_app, make_settings
from hostile_server import Handler, HostileHandler, HostileServer, send
from safeeye.app import SafeEye
from safeeye.db.models import AuditEvent, Source, Visit
from safeeye.ingest.monitor import Monitor, VisitReport
from safeeye.ingest.service import add_source
from safeeye.pipeline.detectors import Detectors

IMAGES = 3


def noise_jpeg(seed: int, side: int = 96) -> bytes:
    """A small distinct JPEG (no face in it: quick to scan)."""
    image = Image.effect_noise((side, side), 40 + seed).convert("RGB")
    image.putpixel((seed % side, 0), (255, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def first_waits(gate: threading.Event, body: bytes) -> Handler:
    """The first request waits until ``gate`` is set (a visit stalled mid-way); later ones
    are answered at once."""
    first = threading.Lock()

    def handle(h: HostileHandler) -> None:
        if first.acquire(blocking=False):
            gate.wait(60)
        send(h, 200, body, content_type="image/jpeg")

    return handle


def slow(body: bytes, seconds: float) -> Handler:
    def handle(h: HostileHandler) -> None:
        time.sleep(seconds)
        send(h, 200, body, content_type="image/jpeg")

    return handle


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


@pytest.fixture
def site() -> Iterator[HostileServer]:
    """A page showing a few images."""
    with HostileServer() as server:
        links = "".join(f'<img src="/img/{i}.jpg">' for i in range(IMAGES))
        server.add("/", f"<html><body>{links}</body></html>".encode(), content_type="text/html")
        for i in range(IMAGES):
            server.add(f"/img/{i}.jpg", noise_jpeg(i), content_type="image/jpeg")
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def two_apps(
    request: pytest.FixtureRequest, tmp_path: Path, detectors: Detectors
) -> Iterator[tuple[SafeEye, SafeEye]]:
    """Two services on one database, as two monitor processes would be."""
    url = request.getfixturevalue("postgres_schema") if request.param == "postgres" else None
    settings = make_settings(
        tmp_path / "data", url, fetch_allowlist=("127.0.0.1",), fetch_host_interval=0.0
    )
    first, second = make_app(settings, detectors), make_app(settings, detectors)
    yield first, second
    first.close()
    second.close()


def _visits(app: SafeEye) -> list[Visit]:
    with app.db.session(read_only=True) as session:
        return list(session.execute(select(Visit).order_by(Visit.id)).scalars())


@contextmanager
def stalled_visit(
    monitor: Monitor, source_id: int, site: HostileServer
) -> Iterator[list[VisitReport | None]]:
    """``monitor`` visits the source in a thread and stalls on its first image until the block
    ends; the visit's report is in the list yielded once the block has ended."""
    gate = threading.Event()
    site.route("/img/0.jpg", first_waits(gate, noise_jpeg(0)))
    reports: list[VisitReport | None] = []
    visiting = threading.Thread(target=lambda: reports.append(monitor.visit(source_id)))
    visiting.start()
    try:
        wait_for(lambda: site.hits("/img/0.jpg") == 1)
        yield reports
    finally:
        gate.set()
        visiting.join(120)
        monitor.close()


def test_a_second_monitor_leaves_a_source_alone_while_another_visits_it(
    two_apps: tuple[SafeEye, SafeEye], site: HostileServer
) -> None:
    first_app, second_app = two_apps
    source = act(first_app, add_source, "url", site.url("/"), interval_seconds=600)
    # A lease far shorter than the stall: only the heartbeat keeps the source.
    first = Monitor(first_app, lease=timedelta(seconds=1), heartbeat_seconds=0.2)
    second = Monitor(second_app)
    try:
        with stalled_visit(first, source.id, site) as reports:
            time.sleep(2.0)
            assert second.recover() == 0
            assert second.run_once() == []
            assert [v.status for v in _visits(second_app)] == ["running"]
    finally:
        second.close()
    (report,) = reports
    assert report is not None and report.status == "done" and report.media_new == IMAGES
    assert site.hits("/") == 1
    assert all(site.hits(f"/img/{i}.jpg") == 1 for i in range(IMAGES))
    (visit,) = _visits(first_app)
    assert visit.status == "done" and visit.media_new == IMAGES
    with first_app.db.session(read_only=True) as session:
        row = session.get(Source, source.id)
        assert row is not None and row.lease_owner is None and row.last_status == "done"


def test_a_stalled_monitor_loses_its_source_and_records_nothing_over_the_new_visit(
    two_apps: tuple[SafeEye, SafeEye], site: HostileServer
) -> None:
    first_app, second_app = two_apps
    source = act(first_app, add_source, "url", site.url("/"), interval_seconds=600)
    # A monitor that stops renewing (a frozen machine): its lease runs out mid-visit.
    stalled = Monitor(first_app, lease=timedelta(seconds=0.5), heartbeat_seconds=3600)
    second = Monitor(second_app)
    try:
        with stalled_visit(stalled, source.id, site) as reports:
            time.sleep(0.8)
            (taken_over,) = second.run_once()
            assert taken_over.status == "done" and taken_over.media_new == IMAGES
    finally:
        second.close()
    (lost,) = reports
    assert lost is not None and lost.status == "lost" and lost.media_new == 0
    assert [v.status for v in _visits(first_app)] == ["interrupted", "done"]
    with first_app.db.session(read_only=True) as session:
        row = session.get(Source, source.id)
        assert row is not None and row.last_status == "done" and row.lease_owner is None
        visited = session.execute(
            select(AuditEvent).where(AuditEvent.action == "source.visited")
        ).scalars()
        assert [e.details["status"] for e in visited] == ["done"]


def test_two_monitors_racing_over_one_source_never_visit_it_at_once(
    two_apps: tuple[SafeEye, SafeEye], site: HostileServer
) -> None:
    for i in range(IMAGES):
        site.route(f"/img/{i}.jpg", slow(noise_jpeg(i), 0.1))
    act(two_apps[0], add_source, "url", site.url("/"), interval_seconds=1)
    monitors = [Monitor(app, lease=timedelta(seconds=2), heartbeat_seconds=0.3) for app in two_apps]
    stop = threading.Event()
    failures: list[BaseException] = []

    def keep_visiting(monitor: Monitor) -> None:
        try:
            while not stop.is_set():
                monitor.run_once()
                stop.wait(0.02)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=keep_visiting, args=(m,)) for m in monitors]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len([v for v in _visits(two_apps[0]) if v.status == "done"]) >= 4, 120)
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)
        for monitor in monitors:
            monitor.close()
    assert failures == []
    visits = _visits(two_apps[0])
    assert {v.status for v in visits} == {"done"}
    for earlier, later in pairwise(visits):
        assert earlier.finished_at is not None and earlier.finished_at <= later.started_at
    # The site saw one visit after the other: each page fetch, then each image once.
    log = [r.path for r in site.requests() if r.path != "/robots.txt"]
    visits_seen = []
    for path in log:
        if path == "/":
            visits_seen.append([])
        else:
            visits_seen[-1].append(path)
    expected = sorted(f"/img/{i}.jpg" for i in range(IMAGES))
    assert len(visits_seen) == len(visits)
    assert all(sorted(paths) == expected for paths in visits_seen), visits_seen
