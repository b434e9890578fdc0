"""Deletion requests at scale: 10,000 notices drafted, signed and sent in one batch to a local
regulator receiver; and the time from a re-upload of confirmed media being seen to its notice
arriving at the regulator, under the automatic re-upload policy, end to end.

    python bench/notices.py            # 10,000 notices
    python bench/notices.py --quick    # 1,000 notices (CI)

Figures on lines of their own:

- ``batch_N_seconds`` (``batch_10000_seconds`` for the full run): draft N notices (recipients
  looked up, texts rendered in Korean with English attached, sealed), approve the batch, sign
  and send it to the receiver over HTTPS and record every acknowledgement. Evidence packages
  are built before the clock starts (``evidence_package_ms``: one, without a screenshot).
- ``match_to_sent_seconds``: a re-upload of confirmed media is seen by discovery (the sighting's
  time) until the regulator's receiver holds its notice, with ``safeeye discover``'s in-process
  follow-up loop (the scheduler's 2 s tick) doing the work: compose, evidence with a screenshot
  where Chromium is installed, send.
- ``reupload_to_sent_seconds``: the same from the moment the re-upload's page is put online
  (discovery's visit, the download and the scan included).

The receiver is the tests' (tests/regulator_receiver.py): it verifies each request's Ed25519
signature and validates it against docs/schemas before answering, as a real one must; that
check is counted in the time. The reference point is the Seoul center's six minutes per item.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACES = ROOT / "tests" / "fixtures" / "faces"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from sqlalchemy import func, select  # noqa: E402

from hostile_server import HostileServer  # noqa: E402
from local_https import make_tls  # noqa: E402
from regulator_receiver import RegulatorReceiver  # noqa: E402
from safeeye.app import SafeEye  # noqa: E402
from safeeye.cases.service import add_faces, create_case  # noqa: E402
from safeeye.config import Settings  # noqa: E402
from safeeye.db.models import Match, Notice, Sighting  # noqa: E402
from safeeye.ingest.monitor import Monitor  # noqa: E402
from safeeye.ingest.service import add_source  # noqa: E402
from safeeye.review.decisions import confirm  # noqa: E402
from safeeye.takedown.connectors.api import published_key  # noqa: E402
from safeeye.takedown.dispatch import approve_batch, list_batches  # noqa: E402
from safeeye.takedown.drafting import draft_notices  # noqa: E402
from safeeye.takedown.evidence import build_package  # noqa: E402
from safeeye.takedown.recipients import update_recipient  # noqa: E402
from safeeye.tasks.runner import InProcessRunner  # noqa: E402
from safeeye.tasks.scheduler import follow_up_in_process  # noqa: E402
from safeeye.work import Actor  # noqa: E402

BENCH = Actor.operator("bench")
PAGE = '<html><head><title>board</title></head><body><img src="{src}"></body></html>'
HOSTS = 40  # the copies are spread over this many sites, as re-uploads are


def settings_for(data: Path, site: HostileServer, ca_file: Path, **extra: object) -> Settings:
    return Settings(
        data_dir=data,
        fetch_allowlist=("127.0.0.1",),
        fetch_host_interval=0.0,
        connector_ca_bundle=ca_file,
        rdap_bootstrap_url=site.url("/rdap/"),  # answers 404: no contact, the regulator decides
        api_max_items=20_000,
        actor="bench",
        **extra,
    )


def serve(site: HostileServer, page: str, image: str) -> None:
    site.add(page, PAGE.format(src=image).encode(), content_type="text/html; charset=utf-8")
    site.add(image, (FACES / "obama2.jpg").read_bytes(), content_type="image/jpeg")


def visit(app: SafeEye, url: str) -> None:
    app.call(BENCH, add_source, "url", url)
    monitor = Monitor(app, actor=BENCH)
    try:
        reports = monitor.run_once()
    finally:
        monitor.close()
    if not reports or any(r.status != "done" for r in reports):
        raise SystemExit(f"ERROR: the visit of {url} failed: {[r.errors for r in reports]}")


def confirmed_case(app: SafeEye, site: HostileServer, code: str) -> int:
    """Case ``code`` with its face, the site's photo of him seen and confirmed; the media id."""
    app.call(BENCH, create_case, code)
    app.call(BENCH, add_faces, code, [FACES / "obama.jpg"])
    visit(app, site.url("/gallery/one.html"))
    with app.db.session(read_only=True) as session:
        match = session.execute(select(Match)).scalars().one()
    app.call(BENCH, confirm, [match.id], category="synthetic")
    return match.media_id


def copies(app: SafeEye, media_id: int, count: int) -> None:
    """``count`` more sightings of the media, on ``HOSTS`` sites (setting up, not timed)."""
    with app.db.session() as session:
        first = session.execute(select(Sighting).where(Sighting.media_id == media_id)).scalar_one()
        now = datetime.now(UTC)
        for n in range(count):
            location = f"https://board{n % HOSTS}.example/files/{n:06d}/img.jpg"
            session.add(
                Sighting(
                    media_id=media_id,
                    sha256=first.sha256,
                    location=location,
                    location_key=hashlib.sha256(location.encode()).hexdigest(),
                    page_url=f"https://board{n % HOSTS}.example/thread/{n}",
                    seen_at=now,
                    last_seen_at=now,
                    http_status=200,
                )
            )
        session.commit()


def send_approved(app: SafeEye) -> None:
    runner = InProcessRunner(app, BENCH)
    try:
        for batch in app.call(BENCH, list_batches, "approved"):
            runner.submit("dispatch_batch", batch.id)
        runner.drain()
    finally:
        runner.close()


def bench_batch(work: Path, count: int) -> None:
    tls = make_tls(work / "tls")
    with HostileServer() as site:
        serve(site, "/gallery/one.html", "/img/a.jpg")
        app = SafeEye(settings_for(work / "batch", site, tls.ca_file, evidence_screenshots=False))
        app.init()
        receiving = RegulatorReceiver(published_key(app).public_key, tls, check_answers=False)
        with receiving as receiver:
            app.call(BENCH, update_recipient, "kcsc", address=receiver.url)
            media_id = confirmed_case(app, site, "BENCH-1")
            copies(app, media_id, count - 1)  # with the photo's own sighting: count
            # Evidence packages are made as sightings come in; one is timed here.
            with app.db.session(read_only=True) as session:
                sighting_id = (
                    session.execute(
                        select(Sighting.id).where(Sighting.location.like("https://board0.%"))
                    )
                    .scalars()
                    .first()
                )
            started = time.perf_counter()
            app.call(BENCH, build_package, sighting_id, screenshot=False)
            print(f"evidence_package_ms: {(time.perf_counter() - started) * 1000:.1f}")

            started = time.perf_counter()
            report = app.call(BENCH, draft_notices, case="BENCH-1", evidence=False)
            drafted = time.perf_counter()
            for batch_id in report.batches:
                app.call(BENCH, approve_batch, batch_id)
            send_approved(app)
            done = time.perf_counter()
            with app.db.session(read_only=True) as session:
                sent = session.scalar(
                    select(func.count()).select_from(Notice).where(Notice.status == "sent")
                )
            items = sum(len(r.payload["items"]) for r in receiver.accepted if r.payload)
            if sent != count or items != count or len(report.batches) != 1:
                raise SystemExit(
                    f"ERROR: {sent} notices sent, {items} items received, "
                    f"{len(report.batches)} batches (expected {count} in one)"
                )
            print(f"draft_seconds: {drafted - started:.2f}")
            print(f"send_seconds: {done - drafted:.2f}")
            print(f"notices_per_second: {count / (done - started):.0f}")
            print(f"batch_{count}_seconds: {done - started:.2f}")
        app.close()


def bench_reupload(work: Path) -> None:
    tls = make_tls(work / "tls-reupload")
    with HostileServer() as site:
        serve(site, "/gallery/one.html", "/img/a.jpg")
        settings = settings_for(work / "reupload", site, tls.ca_file, auto_send_reuploads=True)
        app = SafeEye(settings)
        app.init()
        with RegulatorReceiver(published_key(app).public_key, tls) as receiver:
            app.call(BENCH, update_recipient, "kcsc", address=receiver.url)
            confirmed_case(app, site, "BENCH-2")
            app.call(BENCH, draft_notices, case="BENCH-2")
            for batch in app.call(BENCH, list_batches, "draft"):
                app.call(BENCH, approve_batch, batch.id)
            send_approved(app)
            stop = threading.Event()
            follow_up = threading.Thread(target=follow_up_in_process, args=(app, BENCH, stop))
            follow_up.start()
            try:
                online = datetime.now(UTC)
                serve(site, "/board/two.html", "/media/copy.jpg")
                visit(app, site.url("/board/two.html"))
                deadline = time.monotonic() + 300
                while len(receiver.accepted) < 2:
                    if time.monotonic() > deadline:
                        raise SystemExit("ERROR: the re-upload's notice never arrived")
                    time.sleep(0.01)
                arrived = datetime.now(UTC)
            finally:
                stop.set()
                follow_up.join()
            with app.db.session(read_only=True) as session:
                seen = session.execute(
                    select(Sighting.seen_at).where(Sighting.location.like("%/media/copy.jpg"))
                ).scalar_one()
            print(f"screenshots: {'on' if settings.evidence_screenshots else 'off'}")
            print(f"reupload_to_sent_seconds: {(arrived - online).total_seconds():.2f}")
            print(f"match_to_sent_seconds: {(arrived - seen).total_seconds():.2f}")
        app.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1,000 notices (for CI)")
    parser.add_argument("--count", type=int, help="notices in the batch (default 10,000)")
    args = parser.parse_args()
    count = args.count or (1_000 if args.quick else 10_000)
    with tempfile.TemporaryDirectory(prefix="safeeye-bench-") as tmp:
        work = Path(tmp)
        bench_batch(work, count)
        bench_reupload(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
