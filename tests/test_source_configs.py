"""Source kinds' typed configs and kind detection: checked when a source is added, in `ingest`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FACES, act, make_app, make_settings
from safeeye import cli
from safeeye.app import SafeEye
from safeeye.db.models import Source
from safeeye.errors import NotFoundError, PermissionDenied, ValidationError
from safeeye.ingest.service import add_source, add_watch, list_sources
from safeeye.ingest.sources import detect_kind, kind_named, obeys_robots
from safeeye.ingest.sources.crawl import CrawlConfig
from safeeye.work import Actor, Role

SITE = "https://site.example/"


@pytest.fixture
def bare_app(tmp_path: Path) -> Iterator[SafeEye]:
    """The service without models: adding and listing sources scans nothing."""
    safe = make_app(make_settings(tmp_path / "data"))
    yield safe
    safe.close()


def refused(app: SafeEye, *args: object, **kwargs: object) -> str:
    """The text of the ``ValidationError`` that adding this source raises."""
    with pytest.raises(ValidationError) as caught:
        act(app, add_source, *args, **kwargs)
    return caught.value.as_text()


@pytest.mark.parametrize(
    ("config", "field", "why"),
    [
        ({"depth": -1}, "depth", "greater than or equal to 0"),
        ({"max_pages": 0}, "max_pages", "greater than or equal to 1"),
        ({"depth": "deep"}, "depth", "valid integer"),
        ({"include": ["https://site.example/gallery/**"]}, "include[0]", "not a URL"),
        ({"exclude": ["/ok/**", "/page?id=*"]}, "exclude[1]", "no query"),
        ({"include": ["/a/***"]}, "include[0]", "'***'"),
        ({"include": [""]}, "include[0]", "empty"),
        ({"seeds": ["ftp://site.example/"]}, "seeds[0]", "http(s) URL"),
        ({"sitemaps": "sometimes"}, "sitemaps", "valid boolean"),
        ({"scope": ["/gallery/**"]}, "scope", "not a setting"),
    ],
)
def test_a_bad_crawl_setting_is_refused_naming_the_field(
    bare_app: SafeEye, config: dict[str, object], field: str, why: str
) -> None:
    text = refused(bare_app, "crawl", SITE, config=config)
    assert text.startswith(f"bad_config: crawl source: {field}: ") and why in text, text
    assert act(bare_app, list_sources) == []  # nothing was stored


def test_every_kind_checks_its_own_settings(bare_app: SafeEye, tmp_path: Path) -> None:
    assert "depth: not a setting" in refused(bare_app, "url", SITE, config={"depth": 2})
    telegram = refused(bare_app, "telegram", str(tmp_path), config={"usernames": {"7": "a b"}})
    assert "usernames.7: not a Telegram username" in telegram
    chat_id = refused(bare_app, "telegram", str(tmp_path), config={"usernames": {"x": "chan"}})
    assert "usernames.x (key): " in chat_id
    upload = refused(bare_app, "upload", "upload", config={"urls": ["https://ok.example/", "x"]})
    assert "urls[1]: not a usable http(s) URL" in upload
    assert "files[0]: " in refused(bare_app, "upload", "upload", config={"files": ["rel.jpg"]})
    assert "recursive" in refused(bare_app, "folder", str(tmp_path), config={"recursive": "?"})
    assert "unknown source kind 'ftp'" in refused(bare_app, "ftp", SITE)
    with pytest.raises(NotFoundError):
        act(bare_app, add_source, "folder", str(tmp_path / "missing"))


def test_a_value_given_is_never_quoted_back(bare_app: SafeEye) -> None:
    secret = "https://leak.example/victim-name/**"
    text = refused(bare_app, "crawl", SITE, config={"include": [secret]})
    assert "victim-name" not in text and "leak.example" not in text


def test_the_stored_config_is_the_kinds_with_defaults_and_normalised_values(
    bare_app: SafeEye,
) -> None:
    source = act(
        bare_app,
        add_source,
        "crawl",
        "HTTPS://Site.Example:443/start",
        config={"depth": "2", "include": ["gallery/**", "/앨범 1/*"], "seeds": [SITE + "b/../c"]},
    )
    assert source.locator == "https://site.example/start"
    assert source.config == {
        "obey_robots": True,
        "seeds": ["https://site.example/c"],
        "include": ["/gallery/**", "/%EC%95%A8%EB%B2%94%201/*"],
        "exclude": [],
        "depth": 2,
        "max_pages": 500,
        "max_pages_per_prefix": 250,
        "max_seconds": None,
        "sitemaps": True,
        "feeds": True,
    }
    telegram = act(
        bare_app, add_source, "telegram", str(FACES), config={"usernames": {"42": "@leak_chan"}}
    )
    assert telegram.config == {"usernames": {"42": "leak_chan"}}


def test_a_bare_dict_config_of_an_existing_row_still_works(bare_app: SafeEye) -> None:
    with bare_app.db.session() as session:
        session.add(
            Source(
                kind="crawl",
                locator=SITE,
                config={"depth": 1, "exclude": ["/private/**"], "retired_setting": 3},
            )
        )
        session.add(Source(kind="url", locator=SITE + "x.jpg", config={}))
    with bare_app.db.session(read_only=True) as session:
        crawl_row, url_row = session.query(Source).order_by(Source.id).all()
        config = kind_named("crawl").config(crawl_row)
        assert isinstance(config, CrawlConfig)
        assert (config.depth, config.exclude, config.max_pages) == (1, ("/private/**",), 500)
        assert obeys_robots(url_row) and obeys_robots(crawl_row)
    described = [s.description for s in act(bare_app, list_sources)]
    assert described == [f"{SITE} (depth 1, whole site)", SITE + "x.jpg"]


def test_a_stored_config_this_version_cannot_read_is_named_not_a_crash(
    bare_app: SafeEye,
) -> None:
    with bare_app.db.session() as session:
        session.add(Source(kind="crawl", locator=SITE, config={"depth": -5}))
    (listed,) = act(bare_app, list_sources)
    assert "bad_config: crawl source: depth" in listed.description


def test_an_interval_under_a_second_is_refused(bare_app: SafeEye) -> None:
    assert "1 s or more" in refused(bare_app, "url", SITE, interval_seconds=0)


def test_adding_a_source_needs_a_counselor(bare_app: SafeEye) -> None:
    reviewer = Actor("user:rev", frozenset({Role.REVIEWER}))
    with pytest.raises(PermissionDenied):
        bare_app.call(reviewer, add_source, "url", SITE)


# --- what a person typed --------------------------------------------------------------------


def test_the_kind_is_detected_from_what_a_person_typed(tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    export = tmp_path / "ChatExport_2026-01-02"
    export.mkdir()
    (export / "result.json").write_text("{}")
    photo = folder / "a.jpg"
    photo.write_bytes(b"x")
    assert detect_kind(str(folder)) == "folder"
    assert detect_kind(str(export)) == "telegram"
    assert detect_kind(str(export / "result.json")) == "telegram"
    assert detect_kind(SITE) == "url"
    assert detect_kind(SITE, crawl=True) == "crawl"
    for target, crawl in [(str(folder), True), (str(photo), False), ("inbox2", False)]:
        with pytest.raises(ValidationError):
            detect_kind(target, crawl=crawl)


def test_add_watch_passes_on_only_what_the_kind_takes(bare_app: SafeEye, tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "result.json").write_text("{}")
    telegram = act(bare_app, add_watch, str(export / "result.json"))
    assert (telegram.kind, telegram.locator) == ("telegram", str(export.resolve()))
    crawl = act(bare_app, add_watch, SITE, crawl=True, config={"include": ["/gallery/**"]})
    assert crawl.kind == "crawl" and crawl.config["include"] == ["/gallery/**"]
    with pytest.raises(ValidationError, match="folder source: obey_robots: not a setting"):
        act(bare_app, add_watch, str(tmp_path), config={"obey_robots": False})


def _cli(app: SafeEye, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    monkeypatch.setitem(cli._state, "app", app)
    result = CliRunner().invoke(cli.app, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_source_add_keeps_its_options_and_output(
    bare_app: SafeEye, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, url = _cli(bare_app, monkeypatch, "source", "add", SITE + "leak.jpg", "--every", "1h")
    assert code == 0 and set(url) == {"id", "kind", "locator", "interval_seconds", "config"}
    assert (url["kind"], url["interval_seconds"], url["config"]) == (
        "url",
        3600,
        {"obey_robots": True},
    )
    args = ["source", "add", SITE, "--crawl", "--depth", "2", "--max-pages", "50", "--no-robots"]
    code, crawl = _cli(bare_app, monkeypatch, *args, "--scope", "/g/**", "--exclude", "/g/x/*")
    assert code == 0 and crawl["kind"] == "crawl"
    config = crawl["config"]
    assert (config["depth"], config["max_pages"], config["obey_robots"]) == (2, 50, False)
    assert (config["include"], config["exclude"]) == (["/g/**"], ["/g/x/*"])
    code, folder = _cli(bare_app, monkeypatch, "source", "add", str(tmp_path))
    assert code == 0 and folder["kind"] == "folder"


def test_source_add_refuses_a_setting_that_would_do_nothing(
    bare_app: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = _cli(bare_app, monkeypatch, "source", "add", SITE, "--scope", "/gallery/**")
    assert code == 2 and out["error"] == (
        "bad_config: url source: include: not a setting of this kind of source"
    )
    code, out = _cli(bare_app, monkeypatch, "source", "add", SITE, "--crawl", "--scope", SITE)
    assert code == 2 and "include[0]: a path pattern, not a URL" in out["error"]
    assert act(bare_app, list_sources) == []


def test_import_telegram_refuses_a_username_it_cannot_use(
    bare_app: SafeEye, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    args = ["source", "import-telegram", str(tmp_path), "--username"]
    code, out = _cli(bare_app, monkeypatch, *args, "leak_chan")
    assert code == 2 and out["error"] == "invalid: --username takes CHAT_ID=username"
    code, out = _cli(bare_app, monkeypatch, *args, "123=not a name")
    assert code == 2 and "usernames.123: not a Telegram username" in out["error"]
    assert act(bare_app, list_sources) == []
