"""Discovery speed: pages crawled per second, and the time from a file appearing on a watched
site to its match being stored.

    python bench/discovery.py            # 400-page crawl; 30-second monitoring interval
    python bench/discovery.py --quick    # 100-page crawl; 10-second interval (CI)

Figures on lines of their own: ``pages_per_second: N`` and ``appear_to_match_seconds: N``
(target: under 60 s with a 30-second interval). The site is served on 127.0.0.1 by this script;
the per-host politeness delay is set to 0 (a real site gets the default 0.5 s between requests,
which caps one host at 2 pages per second whatever the machine).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACES = ROOT / "tests" / "fixtures" / "faces"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from sqlalchemy import select  # noqa: E402

from hostile_server import HostileServer  # noqa: E402
from safeeye.app import SafeEye  # noqa: E402
from safeeye.cases.service import add_faces, create_case  # noqa: E402
from safeeye.config import Settings  # noqa: E402
from safeeye.db.models import Match, Sighting  # noqa: E402
from safeeye.ingest.monitor import Monitor  # noqa: E402
from safeeye.ingest.service import add_source  # noqa: E402
from safeeye.work import Actor  # noqa: E402

BENCH = Actor.operator("bench")


def html(*parts: str) -> bytes:
    return ("<!doctype html><html><body>" + "".join(parts) + "</body></html>").encode()


def build_site(server: HostileServer, pages: int) -> None:
    """A tree of ``pages`` pages, each linking to a few others and showing one thumbnail."""
    photo = (FACES / "biden.jpg").read_bytes()
    server.add("/img/photo.jpg", photo, content_type="image/jpeg")
    for i in range(pages):
        children = [c for c in (2 * i + 1, 2 * i + 2) if c < pages]
        links = "".join(f'<a href="/p/{c}.html">page {c}</a>' for c in children)
        server.add(
            f"/p/{i}.html", html(links, '<img src="/img/photo.jpg">'), content_type="text/html"
        )
    server.add("/", html('<a href="/p/0.html">start</a>'), content_type="text/html")


def settings_for(data: Path) -> Settings:
    return Settings(
        data_dir=data, fetch_allowlist=("127.0.0.1",), fetch_host_interval=0.0, actor="bench"
    )


def measure_crawl(work: Path, pages: int) -> float:
    with HostileServer() as server:
        build_site(server, pages)
        app = SafeEye(settings_for(work / "crawl"))
        app.init()
        app.call(
            BENCH,
            add_source,
            "crawl",
            server.url("/"),
            config={"depth": 20, "max_pages": pages + 10, "max_pages_per_prefix": pages + 10},
        )
        monitor = Monitor(app)
        try:
            monitor.warm_up()
            start = time.perf_counter()
            (report,) = monitor.run_once()
            seconds = time.perf_counter() - start
        finally:
            monitor.close()
            app.close()
    print(
        f"crawl: {report.pages} pages, {report.media_found} media links, "
        f"{report.failures} failures in {seconds:.2f}s"
    )
    return report.pages / seconds


def measure_appear_to_match(work: Path, interval: int) -> float:
    with HostileServer() as server:
        server.add("/", html('<a href="/old.html">old</a>'), content_type="text/html")
        server.add("/old.html", html('<img src="/img/old.jpg">'), content_type="text/html")
        server.add("/img/old.jpg", (FACES / "biden.jpg").read_bytes(), content_type="image/jpeg")
        app = SafeEye(settings_for(work / "watch"))
        app.init()
        app.call(BENCH, create_case, "BENCH-OBAMA")
        app.call(BENCH, add_faces, "BENCH-OBAMA", [FACES / "obama.jpg"])
        app.call(BENCH, add_source, "crawl", server.url("/"), interval_seconds=interval)
        monitor = Monitor(app)
        stop = threading.Event()
        first_visit = threading.Event()
        thread = threading.Thread(
            target=monitor.run_forever,
            args=(stop,),
            kwargs={"on_visit": lambda _report: first_visit.set(), "max_sleep": 1.0},
            daemon=True,
        )
        thread.start()
        try:
            first_visit.wait(120)
            time.sleep(random.uniform(0, interval))  # the file appears at a random moment
            new_url = server.url("/img/new.jpg")
            server.add(
                "/img/new.jpg", (FACES / "obama3.jpg").read_bytes(), content_type="image/jpeg"
            )
            server.add("/new.html", html('<img src="/img/new.jpg">'), content_type="text/html")
            server.add(
                "/",
                html('<a href="/old.html">old</a><a href="/new.html">new</a>'),
                content_type="text/html",
            )
            appeared = time.perf_counter()
            while time.perf_counter() - appeared < 4 * interval + 60:
                with app.db.session() as session:
                    matched = session.execute(
                        select(Match.id)
                        .join(Sighting, Sighting.media_id == Match.media_id)
                        .where(Sighting.location == new_url)
                    ).first()
                if matched:
                    return time.perf_counter() - appeared
                time.sleep(0.2)
            raise RuntimeError("the new file was not matched in time")
        finally:
            stop.set()
            thread.join(30)
            monitor.close()
            app.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small crawl, 10-s interval (CI)")
    parser.add_argument("--pages", type=int, default=None)
    parser.add_argument("--interval", type=int, default=None)
    args = parser.parse_args()
    pages = args.pages or (100 if args.quick else 400)
    interval = args.interval or (10 if args.quick else 30)
    work = Path(tempfile.mkdtemp(prefix="safeeye-discovery-bench-"))
    try:
        rate = measure_crawl(work, pages)
        print(f"pages_per_second: {rate:.1f}")
        delay = measure_appear_to_match(work, interval)
        print(f"monitoring interval: {interval}s (a file appears at a random moment)")
        print(f"appear_to_match_seconds: {delay:.1f}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
