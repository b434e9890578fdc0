"""The workbench under a realistic load: a database with 100,000 sightings and 10,000 matches
(200 cases, notices drafted for a few hundred confirmed matches), then the dashboard, the review
queue, a case page, the notices page and one API list, each asked for again and again as a
signed-in administrator would (the whole application: middleware, session lookup, CSRF,
services, templates), in this process through the ASGI test client.

    python bench/web.py            # 100,000 sightings, 10,000 matches
    python bench/web.py --quick    # 10,000 sightings, 1,000 matches (CI)
    python bench/web.py --database-url postgresql+psycopg://postgres@127.0.0.1/EMPTY_DB

Figures on lines of their own: ``median_page_ms`` (all pages' answers together; the target is
under 200 ms), ``p95_page_ms``, and ``<page>_median_ms`` / ``<page>_p95_ms`` for each page.
The rows are put in the database directly (the pipeline's speed is bench/scan.py's subject);
what a page shows of them is real: cases made by the service, matches sealed under their case's
key, notices drafted by the drafting service.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import insert, select, text  # noqa: E402

from safeeye.accounts import create_user  # noqa: E402
from safeeye.app import SafeEye  # noqa: E402
from safeeye.cases.sealing import seal_match_evidence  # noqa: E402
from safeeye.cases.service import create_case  # noqa: E402
from safeeye.config import Settings  # noqa: E402
from safeeye.db.models import Case, Match, Media, Sighting  # noqa: E402
from safeeye.review.decisions import confirm  # noqa: E402
from safeeye.takedown.drafting import draft_notices  # noqa: E402
from safeeye.web.app import create_app  # noqa: E402
from safeeye.work import Actor  # noqa: E402
from webtools import PASSWORD, sign_in  # noqa: E402

BENCH = Actor.operator("bench")
CASES = 200
SIGHTINGS_PER_MEDIA = 10
HOSTS = 300
DAYS = 30
CHUNK = 5_000


def seed(app: SafeEye, matches: int, confirmed: int) -> str:
    """The rows; returns the code of a case with its share of matches and notices."""
    rng = random.Random(14)
    codes = [f"BENCH-{n:04d}" for n in range(CASES)]
    for code in codes:
        app.call(BENCH, create_case, code, consent_basis="bench")
    now = datetime.now(UTC)
    with app.db.session() as session:
        cases = session.execute(select(Case).order_by(Case.id)).scalars().all()
        keys = {case.id: app.keys.case_key(case) for case in cases}
        case_ids = [case.id for case in cases]
        first_media = (
            session.execute(select(Media.id).order_by(Media.id.desc())).scalar() or 0
        ) + 1
        for start in range(0, matches, CHUNK):
            media_rows, sighting_rows, match_rows = [], [], []
            for n in range(start, min(start + CHUNK, matches)):
                created = now - timedelta(days=rng.random() * DAYS)
                digest = hashlib.sha256(f"bench media {n}".encode()).hexdigest()
                media_rows.append(
                    {
                        "id": first_media + n,
                        "sha256": digest,
                        "md5": digest[:32],
                        "size_bytes": 100_000 + n,
                        "media_type": "image",
                        "format": "jpeg",
                        "status": "scanned",
                        "face_count": 1,
                        "sexual_score": round(rng.random(), 3),
                        "created_at": created,
                        "scanned_at": created,
                    }
                )
                for s in range(SIGHTINGS_PER_MEDIA):
                    host = f"board{rng.randrange(HOSTS)}.example"
                    location = f"https://{host}/files/{n:06d}-{s}.jpg"
                    seen = created + timedelta(hours=s)
                    sighting_rows.append(
                        {
                            "media_id": first_media + n,
                            "sha256": digest,
                            "location": location,
                            "location_key": hashlib.sha256(location.encode()).hexdigest(),
                            "page_url": f"https://{host}/thread/{n}",
                            "seen_at": seen,
                            "last_seen_at": seen,
                            "http_status": 200,
                        }
                    )
                case_id = case_ids[n % CASES]
                match_rows.append(
                    {
                        "media_id": first_media + n,
                        "case_id": case_id,
                        "kind": "face" if n % 4 else "hash",
                        "distance": round(rng.uniform(0.2, 0.6), 3) if n % 4 else rng.randrange(32),
                        "frame_count": 1,
                        "evidence_sealed": b"",
                        "status": "pending",
                        "created_at": created,
                        "updated_at": created,
                    }
                )
            session.execute(insert(Media), media_rows)
            session.execute(insert(Sighting), sighting_rows)
            session.execute(insert(Match), match_rows)
        session.flush()
        for match in session.execute(select(Match.id, Match.case_id)).all():
            evidence = {"seeded": True, "match": match.id}
            session.execute(
                Match.__table__.update()
                .where(Match.id == match.id)
                .values(
                    evidence_sealed=seal_match_evidence(keys[match.case_id], match.id, evidence)
                )
            )
        session.commit()
        chosen = list(
            session.execute(select(Match.id).order_by(Match.id).limit(confirmed)).scalars()
        )
    app.call(BENCH, confirm, chosen, category="synthetic")
    app.call(BENCH, draft_notices, match_ids=chosen)
    if app.db.engine.dialect.name == "postgresql":
        # What autovacuum does within a minute of a bulk load on a live server: without
        # statistics the planner scans whole tables (the case page: 150 ms instead of 35).
        with app.db.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return codes[0]


def measure(client: TestClient, path: str, rounds: int) -> list[float]:
    client.get(path)  # warm: templates compiled, caches filled
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"{path} answered {answer.status_code}: {answer.text[:300]}")
    return times


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1,000 matches (for CI)")
    parser.add_argument("--matches", type=int, help="matches (10 sightings each)")
    parser.add_argument("--rounds", type=int, default=20, help="answers timed per page")
    parser.add_argument(
        "--database-url", help="an empty database to fill (default: SQLite in a temporary folder)"
    )
    args = parser.parse_args()
    matches = args.matches or (1_000 if args.quick else 10_000)
    confirmed = max(10, matches // 40)
    with tempfile.TemporaryDirectory(prefix="safeeye-bench-") as tmp:
        # The seeded pages are on hosts that do not exist: no screenshots for their evidence.
        settings = Settings(
            data_dir=Path(tmp) / "data",
            database_url=args.database_url,
            actor="bench",
            evidence_screenshots=False,
        )
        app = SafeEye(settings)
        app.init()
        started = time.perf_counter()
        case = seed(app, matches, confirmed)
        app.call(BENCH, create_user, "bench", ["admin"], password=PASSWORD, language="ko")
        print(
            f"seeded {matches * SIGHTINGS_PER_MEDIA:,} sightings, {matches:,} matches, "
            f"{confirmed} confirmed with notices in {time.perf_counter() - started:.1f} s"
        )
        pages = {
            "dashboard": "/",
            "review_queue": "/review",
            "case": f"/cases/{case}",
            "notices": "/notices",
            "api_cases": "/api/v1/cases",
        }
        everything: list[float] = []
        with TestClient(create_app(app), follow_redirects=False) as client:
            assert sign_in(client, "bench").status_code == 303
            for name, path in pages.items():
                times = measure(client, path, args.rounds)
                everything.extend(times)
                print(f"{name}_median_ms: {statistics.median(times):.1f}")
                print(f"{name}_p95_ms: {p95(times):.1f}")
        print(f"median_page_ms: {statistics.median(everything):.1f}")
        print(f"p95_page_ms: {p95(everything):.1f}")
        app.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
