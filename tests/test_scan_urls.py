"""Scanning a URL: fetched safely, with the HTTP facts kept on the sighting."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import FIXTURES, make_app, make_settings
from safeeye.app import SafeEye
from safeeye.db.models import Sighting
from safeeye.pipeline.detectors import Detectors
from safeeye.pipeline.scan import Scanner


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _serving(directory: Path) -> Iterator[str]:
    """A local web server over ``directory``; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture
def fixture_server() -> Iterator[str]:
    with _serving(FIXTURES) as url:
        yield url


def test_private_addresses_are_refused_unless_allow_listed(
    app: SafeEye,
    fixture_server: str,
    tmp_path,
    detectors: Detectors,  # type: ignore[no-untyped-def]
) -> None:
    url = f"{fixture_server}/faces/biden.jpg"
    (refused,) = Scanner(app).scan_inputs([url])
    assert refused.error is not None and refused.error.startswith("blocked_address")

    allowed = make_app(make_settings(tmp_path / "d2", fetch_allowlist=("127.0.0.1",)), detectors)
    (result,) = Scanner(allowed).scan_inputs([url])
    assert result.error is None and result.input == url and result.faces == 1
    with allowed.db.session() as session:
        sighting = session.execute(select(Sighting)).scalar_one()
        assert sighting.location == url and sighting.http_status == 200
        assert sighting.server_ip == "127.0.0.1" and "content-type" in {
            k.lower() for k in sighting.http_headers or {}
        }
    allowed.close()


def test_malformed_urls_get_a_clear_error(app: SafeEye) -> None:
    results = Scanner(app).scan_inputs(["http://", "https://exa mple.com/x.jpg"])
    assert all(r.error and r.error.split(":")[0] in {"bad_url", "dns"} for r in results), results


def test_an_explicit_url_is_scanned_although_robots_txt_disallows_everything(
    tmp_path: Path, detectors: Detectors
) -> None:
    """robots.txt speaks to crawlers; a person asking to scan one URL is not one."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "robots.txt").write_text("User-agent: *\nDisallow: /\n")
    shutil.copy(FIXTURES / "faces" / "biden.jpg", site / "photo.jpg")
    app = make_app(make_settings(tmp_path / "data", fetch_allowlist=("127.0.0.1",)), detectors)
    try:
        with _serving(site) as base:
            (result,) = Scanner(app).scan_inputs([f"{base}/photo.jpg"])
        assert result.error is None and result.faces == 1, result.error
    finally:
        app.close()
