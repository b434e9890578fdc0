"""Distributed scanning: media per second through 1 and through 2 Celery workers on one local
site, and the queue latency (a task handed to the broker until a worker claims its row).

    python bench/workers.py            # 120 photos per run
    python bench/workers.py --quick    # 24 photos per run (CI)

Figures on lines of their own: ``worker_media_per_second_1: N``, ``worker_media_per_second: N``
(2 workers), ``queue_latency_ms: N`` (median). Needs Redis on 127.0.0.1:6379 (the default
broker; `scripts/services` starts it) and uses PostgreSQL on 127.0.0.1:5432 when it is
reachable (a schema of its own), else SQLite. The site is served on 127.0.0.1 by this script
with no politeness delay; each worker analyses in one supervised process (one per core here).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACES = ROOT / "tests" / "fixtures" / "faces"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from PIL import Image  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from hostile_server import HostileServer  # noqa: E402
from safeeye.app import SafeEye  # noqa: E402
from safeeye.cases.service import add_faces, create_case  # noqa: E402
from safeeye.config import Settings  # noqa: E402
from safeeye.db.models import Media, NamedLease  # noqa: E402
from safeeye.db.states import MediaStatus  # noqa: E402
from safeeye.ingest.service import add_source  # noqa: E402
from safeeye.pipeline.record import SightingFacts, store_file  # noqa: E402
from safeeye.signals.hashes import hash_file  # noqa: E402
from safeeye.tasks.celery_engine import CeleryRunner, make_celery  # noqa: E402
from safeeye.work import Actor  # noqa: E402

BENCH = Actor.operator("bench")
REDIS = "redis://127.0.0.1:6379/0"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def photo(seed: int, side: int = 640) -> bytes:
    """A distinct 640x640 JPEG: what a forum thumbnail or a phone picture weighs."""
    image = Image.effect_noise((side, side), 30 + seed % 50).convert("RGB")
    image.putpixel((seed % side, seed // side % side), (255, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


@contextmanager
def database() -> Iterator[str | None]:
    """A fresh PostgreSQL schema (None: SQLite in the data dir when none is reachable)."""
    import psycopg

    plain = POSTGRES.replace("postgresql+psycopg://", "postgresql://")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(plain, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.Error:
        yield None
        return
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def settings_for(data: Path, url: str | None) -> Settings:
    return Settings(
        data_dir=data,
        database_url=url,
        broker_url=REDIS,
        queue=f"bench-{uuid.uuid4().hex[:8]}",
        fetch_allowlist=("127.0.0.1",),
        fetch_host_interval=0.0,
        scan_workers=1,
        actor="bench",
    )


def start_workers(settings: Settings, count: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEEYE_")}
    env.update(
        SAFEEYE_DATA_DIR=str(settings.data_dir),
        SAFEEYE_BROKER_URL=settings.broker_url,
        SAFEEYE_QUEUE=settings.queue,
        SAFEEYE_FETCH_ALLOWLIST="127.0.0.1",
        SAFEEYE_FETCH_HOST_INTERVAL="0",
        SAFEEYE_SCAN_WORKERS="1",
    )
    if settings.database_url:
        env["SAFEEYE_DATABASE_URL"] = settings.database_url
    workers = []
    for n in range(count):
        log = open(logs / f"worker{n}.log", "wb")  # noqa: SIM115 - the process owns it
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", "from safeeye.cli import app; app()", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    deadline = time.monotonic() + 120
    while sum(b"ready" in (logs / f"worker{n}.log").read_bytes() for n in range(count)) < count:
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            raise SystemExit("the workers did not start: see " + str(logs))
        time.sleep(0.1)
    return workers


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(timeout=60)


def warm(app: SafeEye, runner: CeleryRunner, workers: int, work: Path) -> None:
    """Every worker loads its models (one scan each) before the clock starts."""
    ids = []
    for n in range(workers * 2):
        path = work / f"warm{n}.jpg"
        path.write_bytes(photo(10_000 + n, 96))
        stored = app.call(BENCH, store_file, path, hash_file(path), SightingFacts(str(path)))
        ids.append(stored.media_id)
        runner.submit("scan_media", stored.media_id)
    wait_scanned(app, len(ids), 180)


def scanned(app: SafeEye) -> int:
    with app.db.session(read_only=True) as session:
        return (
            session.scalar(
                select(func.count()).select_from(Media).where(Media.status != MediaStatus.PENDING)
            )
            or 0
        )


def wait_scanned(app: SafeEye, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while scanned(app) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {scanned(app)} of {count} media scanned in {timeout:g} s")
        time.sleep(0.05)


def queue_latency(app: SafeEye, runner: CeleryRunner, work: Path, samples: int) -> list[float]:
    """Seconds from handing a scan to the broker until a worker claimed its row."""
    latencies = []
    for n in range(samples):
        path = work / f"latency{n}.jpg"
        path.write_bytes(photo(20_000 + n, 64))
        stored = app.call(BENCH, store_file, path, hash_file(path), SightingFacts(str(path)))
        started = time.monotonic()
        runner.submit("scan_media", stored.media_id)
        while True:
            with app.db.session(read_only=True) as session:
                if (session.get(Media, stored.media_id).attempts or 0) > 0:  # type: ignore[union-attr]
                    break
            time.sleep(0.002)
        latencies.append(time.monotonic() - started)
        wait_scanned(app, scanned(app) + 1, 60)
    return latencies


def measure(workers: int, count: int, root: Path) -> tuple[float, list[float]]:
    """Media per second through ``workers`` workers, and queue latencies (idle workers)."""
    work = root / f"run{workers}"
    work.mkdir()
    with database() as url, HostileServer() as server:
        for i in range(count):
            server.add(f"/img/{i}.jpg", photo(i), content_type="image/jpeg")
        links = "".join(f'<img src="/img/{i}.jpg">' for i in range(count))
        server.add("/", f"<html><body>{links}</body></html>".encode(), content_type="text/html")
        settings = settings_for(work / "data", url)
        app = SafeEye(settings)
        app.init()
        app.call(BENCH, create_case, "BENCH-W")
        app.call(BENCH, add_faces, "BENCH-W", [FACES / "obama.jpg"])
        runner = CeleryRunner(make_celery(settings))
        processes = start_workers(settings, workers, work)
        try:
            warm(app, runner, workers, work)
            before = scanned(app)
            wait_for_scheduler(app)
            started = time.monotonic()
            app.call(BENCH, add_source, "url", server.url("/"))
            wait_scanned(app, before + count, 600)
            rate = count / (time.monotonic() - started)
            latencies = queue_latency(app, runner, work, 10)
        finally:
            stop(processes)
            app.close()
    return rate, latencies


def wait_for_scheduler(app: SafeEye) -> None:
    deadline = time.monotonic() + 60
    while True:
        with app.db.session(read_only=True) as session:
            if session.get(NamedLease, "scheduler") is not None:
                return
        if time.monotonic() > deadline:
            raise SystemExit("no worker took the scheduler's job")
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="24 photos per run (CI)")
    parser.add_argument("--photos", type=int, default=None)
    args = parser.parse_args()
    count = args.photos or (24 if args.quick else 120)
    from safeeye.tasks.celery_engine import make_celery as _check  # the broker must answer

    try:
        _check(settings_for(Path(tempfile.gettempdir()), None)).connection_for_write().connect()
    except Exception as exc:
        print(f"Redis is not reachable at {REDIS} ({type(exc).__name__}): run scripts/services")
        return 1
    root = Path(tempfile.mkdtemp(prefix="safeeye-workers-bench-"))
    try:
        one, _ = measure(1, count, root)
        two, latencies = measure(2, count, root)
        print(f"photos per run: {count} (640x640 JPEG), {os.cpu_count()} cores")
        print(f"worker_media_per_second_1: {one:.1f}")
        print(f"worker_media_per_second: {two:.1f}")
        print(f"speed-up with 2 workers: {two / one:.2f}x")
        print(f"queue_latency_ms: {statistics.median(latencies) * 1000:.0f}")
        print(
            f"queue_latency_p95_ms: {sorted(latencies)[int(len(latencies) * 0.95) - 1] * 1000:.0f}"
        )
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
