"""Monitor processes: one killed in the middle of a cycle loses no sighting and duplicates none,
and its source is taken over only once its lease has expired; two running at once never visit
one source together."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from PIL import Image, ImageOps
from sqlalchemy import create_engine, text

from conftest import FACES
from hostile_server import HostileHandler, HostileServer, send

IMAGES = 24


def _variants() -> list[bytes]:
    """Distinct JPEGs (different crops of the fixture photos)."""
    sources = sorted(FACES.glob("*.jpg"))
    out = []
    for i in range(IMAGES):
        im = ImageOps.exif_transpose(Image.open(sources[i % len(sources)])).convert("RGB")
        shift = 5 + 3 * (i // len(sources))
        im = im.crop((shift, shift, im.width - shift, im.height - shift))
        im.thumbnail((640, 640))
        buffer = io.BytesIO()
        im.save(buffer, format="JPEG", quality=85)
        out.append(buffer.getvalue())
    return out


def _expire_leases(db: Path) -> None:
    """What two minutes without a heartbeat do: every lease's expiry is in the past."""
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE sources SET lease_until = :past WHERE lease_until IS NOT NULL"),
            {"past": "2000-01-01 00:00:00.000000"},
        )
    engine.dispose()


def _counts(db: Path) -> tuple[int, int, list[str]]:
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        sightings = conn.execute(text("SELECT count(*) FROM sightings")).scalar_one()
        distinct = conn.execute(
            text("SELECT count(*) FROM (SELECT DISTINCT location, sha256 FROM sightings)")
        ).scalar_one()
        visits = [r[0] for r in conn.execute(text("SELECT status FROM visits ORDER BY id"))]
    engine.dispose()
    return sightings, distinct, visits


def _safeeye(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "safeeye.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _env(data: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SAFEEYE_DATA_DIR": str(data),
        "SAFEEYE_FETCH_ALLOWLIST": "127.0.0.1",
        "SAFEEYE_FETCH_HOST_INTERVAL": "0",
        "SAFEEYE_SCAN_WORKERS": "1",
        "SAFEEYE_ACTOR": "test",
    }


def test_a_second_discover_leaves_the_source_another_one_is_visiting(tmp_path: Path) -> None:
    env = _env(tmp_path / "data")
    gate = threading.Event()
    images = _variants()[:3]

    def stalls(h: HostileHandler) -> None:  # the first visit stops here until the gate opens
        gate.wait(120)
        send(h, 200, images[0], content_type="image/jpeg")

    with HostileServer() as site:
        site.route("/img/0.jpg", stalls)
        for i, body in enumerate(images[1:], start=1):
            site.add(f"/img/{i}.jpg", body, content_type="image/jpeg")
        links = "".join(f'<img src="/img/{i}.jpg">' for i in range(len(images)))
        site.add("/", f"<html><body>{links}</body></html>".encode(), content_type="text/html")
        added = _safeeye(env, "source", "add", site.url("/"), "--every", "10m", "--json")
        assert added.returncode == 0, added.stderr

        first = subprocess.Popen(
            [sys.executable, "-m", "safeeye.cli", "discover", "--once", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while site.hits("/img/0.jpg") == 0 and first.poll() is None:
                assert time.monotonic() < deadline, "the first visit never got going"
                time.sleep(0.05)
            second = _safeeye(env, "discover", "--once", "--json")
        finally:
            gate.set()
            out, err = first.communicate(timeout=300)
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout)["visits"] == []
        assert first.returncode == 0, err
        (visit,) = json.loads(out)["visits"]
        assert visit["status"] == "done" and visit["media_new"] == len(images)
        assert site.hits("/") == 1
        assert all(site.hits(f"/img/{i}.jpg") == 1 for i in range(len(images)))


def test_killing_the_monitor_mid_cycle_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(data)
    with HostileServer() as site:
        links = []
        for i, body in enumerate(_variants()):
            site.add(f"/img/{i}.jpg", body, content_type="image/jpeg")
            links.append(f'<img src="/img/{i}.jpg">')
        site.add(
            "/",
            ("<html><body>" + "".join(links) + "</body></html>").encode(),
            content_type="text/html",
        )
        added = _safeeye(env, "source", "add", site.url("/"), "--crawl", "--every", "10m", "--json")
        assert added.returncode == 0, added.stderr

        monitor = subprocess.Popen(
            [sys.executable, "-m", "safeeye.cli", "discover"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                time.sleep(0.1)
                if (data / "safeeye.db").exists() and _counts(data / "safeeye.db")[0] >= 3:
                    break
            monitor.send_signal(signal.SIGKILL)
            monitor.wait(timeout=30)
        finally:
            if monitor.poll() is None:
                monitor.kill()
        before, _, visits = _counts(data / "safeeye.db")
        assert 3 <= before < IMAGES and visits == ["running"], (before, visits)

        # The killed monitor's lease has not expired: its source is left alone.
        early = _safeeye(env, "discover", "--once", "--json")
        assert early.returncode == 0, early.stderr
        assert json.loads(early.stdout)["visits"] == []
        assert _counts(data / "safeeye.db")[2] == ["running"]

        _expire_leases(data / "safeeye.db")
        again = _safeeye(env, "discover", "--once", "--json")
        assert again.returncode == 0, again.stderr
        (report,) = json.loads(again.stdout)["visits"]
        assert report["status"] == "done" and report["media_new"] == IMAGES - before

    sightings, distinct, visits = _counts(data / "safeeye.db")
    assert sightings == distinct == IMAGES
    assert visits == ["interrupted", "done"]
    verify = _safeeye(env, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
