"""Evidence packages: built from a scanned sighting, exported, verified offline; one changed
byte in any file fails them; the screenshot is blurred and every request it made went through
the fetcher's SSRF guard."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageStat
from sqlalchemy import func, select
from typer.testing import CliRunner
from warcio.archiveiterator import ArchiveIterator

from conftest import FACES, TESTER, act, make_app, make_settings
from hostile_server import HostileServer, redirect, trickle
from safeeye import cli
from safeeye.app import SafeEye
from safeeye.db.models import AuditEvent, Page, Sighting
from safeeye.errors import PermissionDenied
from safeeye.ingest.fetcher import USER_AGENT, Fetcher
from safeeye.ingest.monitor import Monitor
from safeeye.ingest.policy import fetch_policy
from safeeye.ingest.service import add_source
from safeeye.pipeline.detectors import Detectors
from safeeye.takedown.evidence import (
    build_package,
    evidence_public_key,
    evidence_ref,
    export_package,
)
from safeeye.takedown.package import (
    MANIFEST,
    PUBLIC_KEY,
    SCREENSHOT,
    SIGNATURE,
    WARC,
    verify_package,
)
from safeeye.takedown.screenshot import (
    ScreenshotError,
    ScreenshotPolicy,
    chromium_missing,
    render_page,
)
from safeeye.work import Actor, Role

MISSING = chromium_missing(ScreenshotPolicy())
needs_chromium = pytest.mark.skipif(
    MISSING is not None, reason=f"screenshots need Chromium: {MISSING}; scripts/setup installs it"
)
FACE = FACES / "biden.jpg"
LATE = (FACES / "alex-lacamoire.png").read_bytes()
PACKAGE_FILES = (MANIFEST, SIGNATURE, PUBLIC_KEY, WARC, SCREENSHOT)
#: The check that fails when a byte of each file changes.
FAILS_AS = {
    MANIFEST: {MANIFEST, "signature"},  # no longer JSON, or not the bytes signed
    SIGNATURE: {"signature"},
    PUBLIC_KEY: {PUBLIC_KEY},
    WARC: {WARC},
    SCREENSHOT: {SCREENSHOT},
}


@dataclass
class Scanned:
    """A local site scanned into a sighting: the app, the servers, the sighting's id."""

    app: SafeEye
    site: HostileServer
    blocked: HostileServer
    sighting_id: int
    page_html: bytes


def _page(blocked: HostileServer, site: HostileServer) -> bytes:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>gallery</title></head><body>"
        "<h1 id='title'>waiting for the script</h1>"
        '<img src="/img/face.jpg" width="600">'
        f'<img src="{blocked.url("/secret.jpg")}">'
        '<script src="/js/app.js"></script>'
        "</body></html>"
    ).encode()


def _script(site: HostileServer) -> bytes:
    """Runs in the page: draws a picture it asks for itself (through a redirect), tries a
    websocket and a POST."""
    return (
        "document.getElementById('title').textContent = 'the script ran';"
        "var late = new Image(); late.src = '/img/go'; document.body.appendChild(late);"
        f"try {{ new WebSocket('ws://127.0.0.1:{site.port}/socket'); }} catch (e) {{}}"
        "fetch('/collect', {method: 'POST', body: 'x'}).catch(function () {});"
    ).encode()


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory, detectors: Detectors) -> Iterator[Scanned]:
    """A page with an image, a script and an image on a blocked address (127.0.0.2, while
    only 127.0.0.1 is allow-listed), scanned once for the module."""
    with HostileServer() as site, HostileServer(host="127.0.0.2") as blocked:
        blocked.add("/secret.jpg", FACE.read_bytes(), content_type="image/jpeg")
        html = _page(blocked, site)
        site.add("/gallery/one.html", html, content_type="text/html; charset=utf-8")
        site.add("/img/face.jpg", FACE.read_bytes(), content_type="image/jpeg")
        site.add("/img/late.png", LATE, content_type="image/png")
        site.route("/img/go", redirect("/img/late.png"))
        site.add("/js/app.js", _script(site), content_type="application/javascript")
        settings = make_settings(
            tmp_path_factory.mktemp("evidence") / "data",
            fetch_allowlist=("127.0.0.1",),
            fetch_host_interval=0.0,
        )
        app = make_app(settings, detectors)
        act(app, add_source, "url", site.url("/gallery/one.html"))
        monitor = Monitor(app)
        try:
            (report,) = monitor.run_once()
        finally:
            monitor.close()
        assert report.status == "done", report.errors
        with app.db.session() as session:
            sighting = session.execute(
                select(Sighting).where(Sighting.location == site.url("/img/face.jpg"))
            ).scalar_one()
        yield Scanned(app, site, blocked, sighting.id, html)
        app.close()


def _export(scanned: Scanned, package_id: int, folder: Path) -> Path:
    act(scanned.app, export_package, package_id, folder)
    return folder


def _manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST).read_bytes())


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


# -- the package ---------------------------------------------------------------------------


@needs_chromium
def test_a_package_verifies_and_one_changed_byte_in_any_of_its_files_fails_it(
    scanned: Scanned, tmp_path: Path
) -> None:
    summary = act(scanned.app, build_package, scanned.sighting_id, new=True)
    assert summary.files == (WARC, SCREENSHOT) and summary.screenshot_reason is None
    folder = _export(scanned, summary.package_id, tmp_path / "package")
    assert sorted(p.name for p in folder.iterdir()) == sorted(PACKAGE_FILES)
    trusted = act(scanned.app, evidence_public_key)
    report = verify_package(folder, trusted)
    assert report.ok and report.trusted is True and report.failures == ()
    assert report.sighting_id == scanned.sighting_id and report.public_key == trusted
    assert hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest() == summary.manifest_sha256

    for name in PACKAGE_FILES:
        size = (folder / name).stat().st_size
        for at in sorted({0, size // 2, size - 1}):
            changed = tmp_path / f"{name}-{at}"
            shutil.copytree(folder, changed)
            _flip(changed / name, at)
            failed = verify_package(changed, trusted)
            assert not failed.ok, f"a changed byte {at} of {name} went unnoticed"
            named = {check.name for check in failed.failures}
            assert named & FAILS_AS[name], (name, at, failed.failures)

    other_key = "A" * 43 + "="
    assert not verify_package(folder, other_key).ok  # signed, but not by the key trusted
    missing = tmp_path / "missing"
    shutil.copytree(folder, missing)
    (missing / SCREENSHOT).unlink()
    assert {c.name for c in verify_package(missing).failures} == {SCREENSHOT}


def test_the_manifest_holds_the_sightings_facts_and_the_warc_reads_back(
    scanned: Scanned, tmp_path: Path
) -> None:
    summary = act(scanned.app, build_package, scanned.sighting_id, screenshot=False, new=True)
    folder = _export(scanned, summary.package_id, tmp_path / "package")
    manifest = _manifest(folder)
    face = FACE.read_bytes()
    site = scanned.site
    with scanned.app.db.session() as session:
        sighting = session.get(Sighting, scanned.sighting_id)
        assert sighting is not None and sighting.evidence is not None
        page = session.get(Page, sighting.evidence["page_id"])
        assert page is not None
        first_seen, fetched_at = sighting.seen_at, page.fetched_at
    assert manifest["version"] == 1 and manifest["sighting_id"] == scanned.sighting_id
    assert manifest["url"] == manifest["final_url"] == site.url("/img/face.jpg")
    assert manifest["page_url"] == site.url("/gallery/one.html")
    assert manifest["first_seen"] == first_seen.isoformat()
    assert manifest["http_status"] == 200 and manifest["server_ip"] == "127.0.0.1"
    assert manifest["http_headers"]["content-type"] == "image/jpeg"
    assert manifest["media"] == {
        "sha256": hashlib.sha256(face).hexdigest(),
        "md5": hashlib.md5(face).hexdigest(),
    }
    assert manifest["page"]["sha256"] == hashlib.sha256(scanned.page_html).hexdigest()
    assert manifest["public_key"] == summary.public_key
    assert manifest["screenshot"] is None and manifest["screenshot_reason"] == "not asked for"
    warc = (folder / WARC).read_bytes()
    assert manifest["files"] == {
        WARC: {"sha256": hashlib.sha256(warc).hexdigest(), "size": len(warc)}
    }
    assert verify_package(folder).ok

    records = []
    for record in ArchiveIterator(io.BytesIO(warc), check_digests="raise"):
        records.append((record.rec_type, record.rec_headers, record.http_headers))
        if record.rec_type == "response":
            body = record.content_stream().read()
            assert record.digest_checker.passed is True
    (_, headers, http), *_ = [r for r in records if r[0] == "response"]
    assert [r[0] for r in records] == ["warcinfo", "response"]
    assert headers.get_header("WARC-Target-URI") == site.url("/gallery/one.html")
    assert headers.get_header("WARC-IP-Address") == "127.0.0.1"
    assert headers.get_header("WARC-Date").startswith(fetched_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert headers.get_header("WARC-Payload-Digest").startswith("sha256:")
    assert http.get_statuscode() == "200"
    assert http.get_header("Content-Type") == "text/html; charset=utf-8"
    assert body == scanned.page_html


def _sharpness(image: Image.Image) -> float:
    """The variance of the edges: high for a sharp picture, near zero for a blurred one (the
    outermost pixels, which the filter leaves as they were, left out)."""
    edges = image.convert("L").filter(ImageFilter.FIND_EDGES)
    return float(ImageStat.Stat(edges.crop((1, 1, edges.width - 1, edges.height - 1))).var[0])


@needs_chromium
def test_the_screenshot_is_blurred_and_every_request_it_made_went_through_the_guard(
    scanned: Scanned, detectors: Detectors, tmp_path: Path
) -> None:
    site, blocked = scanned.site, scanned.blocked
    before = len(site.requests())
    summary = act(scanned.app, build_package, scanned.sighting_id, new=True)
    made = site.requests()[before:]
    paths = [r.path for r in made]
    assert {"/img/face.jpg", "/js/app.js"} <= set(paths)
    assert paths.count("/img/go") == paths.count("/img/late.png") == 1  # each hop fetched once
    assert "/gallery/one.html" not in {r.path for r in made}  # the kept page is what is shown
    assert all(r.headers.get("user-agent") == USER_AGENT for r in made)  # by the fetcher
    assert not any("upgrade" in r.headers for r in made)  # no websocket got through
    assert blocked.requests() == []  # the blocked address never saw a request

    manifest = _manifest(_export(scanned, summary.package_id, tmp_path / "package"))
    shot = manifest["screenshot"]
    assert shot["document"] == "kept page" and shot["complete"] is True
    assert shot["requests"]["refused"] == {"blocked_address": 1}
    assert shot["requests"]["blocked"] >= 2  # the websocket and the POST
    assert shot["requests"]["fetched"] >= 4  # the page, the script and both pictures

    with Fetcher(fetch_policy(scanned.app.settings)) as fetcher:
        raw = render_page(site.url("/gallery/one.html"), fetcher)  # unblurred, in memory only
    sharp = Image.open(io.BytesIO(raw.png)).convert("RGB")
    stored = Image.open(tmp_path / "package" / SCREENSHOT).convert("RGB")
    assert stored.size == sharp.size == (1280, 800)
    assert _sharpness(stored) < _sharpness(sharp) / 50
    assert detectors.faces.predict(np.asarray(sharp))  # the face shows in the page ...
    assert detectors.faces.predict(np.asarray(stored)) == []  # ... and not in what is stored
    assert blocked.requests() == []


@needs_chromium
def test_a_page_on_a_blocked_address_is_never_requested(scanned: Scanned) -> None:
    blocked = scanned.blocked
    blocked.add("/page.html", b"<html><body>hidden</body></html>", content_type="text/html")
    with (
        Fetcher(fetch_policy(scanned.app.settings)) as fetcher,
        pytest.raises(ScreenshotError) as raised,
    ):
        render_page(blocked.url("/page.html"), fetcher)
    assert raised.value.code == "document" and "blocked_address" in str(raised.value)
    assert blocked.requests() == []


@needs_chromium
def test_a_page_that_moved_is_drawn_at_its_final_url_each_hop_fetched_once(
    scanned: Scanned,
) -> None:
    site = scanned.site
    site.route("/moved", redirect("/new/place.html"))
    site.add(
        "/new/place.html",
        b"<html><body><img src='../img/late.png'></body></html>",
        content_type="text/html",
    )
    before = len(site.requests())
    with Fetcher(fetch_policy(scanned.app.settings)) as fetcher:
        render = render_page(site.url("/moved"), fetcher)
    paths = [r.path for r in site.requests()[before:] if r.path != "/robots.txt"]
    assert render.url == site.url("/new/place.html") and render.complete
    assert sorted(paths) == ["/img/late.png", "/moved", "/new/place.html"]
    assert render.requests == {"fetched": 2, "refused": {}, "blocked": 0}


@needs_chromium
def test_a_page_that_never_finishes_loading_is_drawn_within_the_budget(scanned: Scanned) -> None:
    site = scanned.site
    site.add(
        "/slow.html",
        b"<html><body><h1>shown</h1><script src='/hang.js'></script></body></html>",
        content_type="text/html",
    )
    site.route("/hang.js", trickle(b" ", every=0.2, limit=20))
    policy = ScreenshotPolicy(budget=4.0, settle=1.0)
    with Fetcher(fetch_policy(scanned.app.settings)) as fetcher:
        render = render_page(site.url("/slow.html"), fetcher, policy=policy)
    assert render.complete is False and render.png.startswith(b"\x89PNG")


def test_without_chromium_the_package_is_built_without_a_screenshot_and_says_why(
    scanned: Scanned, tmp_path: Path
) -> None:
    shots = ScreenshotPolicy(executable=tmp_path / "no-chromium")
    summary = act(scanned.app, build_package, scanned.sighting_id, new=True, shots=shots)
    assert summary.files == (WARC,) and "no Chromium" in (summary.screenshot_reason or "")
    folder = _export(scanned, summary.package_id, tmp_path / "package")
    manifest = _manifest(folder)
    assert manifest["screenshot"] is None and "no Chromium" in manifest["screenshot_reason"]
    assert not (folder / SCREENSHOT).exists() and verify_package(folder).ok


def _built(app: SafeEye) -> int:
    with app.db.session() as session:
        return session.execute(
            select(func.count()).where(AuditEvent.action == "evidence.built")
        ).scalar_one()


def test_the_latest_package_is_reused_unless_a_new_one_is_asked_for(scanned: Scanned) -> None:
    app = scanned.app
    audited = _built(app)
    first = act(app, build_package, scanned.sighting_id, screenshot=False, new=True)
    again = act(app, build_package, scanned.sighting_id, screenshot=False)
    assert again.reused and again.package_id == first.package_id
    assert again.ref == first.ref == act(app, evidence_ref, scanned.sighting_id)
    fresh = act(app, build_package, scanned.sighting_id, screenshot=False, new=True)
    assert fresh.package_id != first.package_id and not fresh.reused
    assert _built(app) == audited + 2  # each new package is an audit event; a reuse is not


def test_an_auditor_exports_a_package_but_may_not_build_one(
    scanned: Scanned, tmp_path: Path
) -> None:
    app = scanned.app
    auditor = Actor("user:auditor", frozenset({Role.AUDITOR}))
    with pytest.raises(PermissionDenied):
        app.call(auditor, build_package, scanned.sighting_id, screenshot=False)
    built = app.call(TESTER, build_package, scanned.sighting_id, screenshot=False, new=True)
    app.call(auditor, export_package, built.package_id, tmp_path / "out")
    assert verify_package(tmp_path / "out").ok


def _cli(app: SafeEye, monkeypatch: pytest.MonkeyPatch, *args: str, code: int = 0) -> Any:
    monkeypatch.setitem(cli._state, "app", app)
    result = CliRunner().invoke(cli.app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_the_evidence_commands_build_export_and_verify(
    scanned: Scanned, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = scanned.app
    sighting = str(scanned.sighting_id)
    built = _cli(app, monkeypatch, "evidence", "build", sighting, "--new", "--no-screenshot")
    assert built["sighting_id"] == scanned.sighting_id and built["files"] == [WARC]
    folder = tmp_path / "package"
    export = ["evidence", "export", str(built["package_id"]), "--output", str(folder)]
    out = _cli(app, monkeypatch, *export)
    assert sorted(out["files"]) == sorted([MANIFEST, SIGNATURE, PUBLIC_KEY, WARC])
    key = _cli(app, monkeypatch, "evidence", "key")["public_key"]
    verified = _cli(app, monkeypatch, "evidence", "verify", str(folder), "--public-key", key)
    assert verified["ok"] is True and verified["trusted"] is True and verified["failed"] == []
    _flip(folder / WARC, 100)
    failed = _cli(app, monkeypatch, "evidence", "verify", str(folder), code=1)
    assert failed["ok"] is False and failed["failed"] == [WARC]
    again = _cli(app, monkeypatch, *export, code=2)
    assert again["error"].startswith("conflict:")
