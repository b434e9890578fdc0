"""Text from outside (server headers, URLs, file names) is printed literally by the CLI: never
read as Rich markup, never as terminal control codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import make_app, make_settings
from hostile_server import HostileServer
from safeeye import cli
from safeeye.app import SafeEye


@pytest.fixture
def bare_app(tmp_path: Path) -> Iterator[SafeEye]:
    """The service without models: nothing in these tests gets as far as a scan."""
    settings = make_settings(
        tmp_path / "data", fetch_allowlist=("127.0.0.1",), fetch_host_interval=0.0
    )
    safe = make_app(settings)
    yield safe
    safe.close()


def _run(app: SafeEye, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    monkeypatch.setitem(cli._state, "app", app)
    result = CliRunner().invoke(cli.app, list(args), env={"COLUMNS": "400"})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, result.output


def _flat(text: str) -> str:
    """Without whitespace: Rich wraps long lines wherever the terminal width ends."""
    return "".join(text.split())


def test_a_content_type_that_looks_like_markup_is_printed_literally(
    bare_app: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HostileServer() as site:
        site.add("/", b'<html><body><img src="/junk.jpg"></body></html>', content_type="text/html")
        site.add("/junk.jpg", b"\x00junk bytes, no image" * 20, content_type="image/jpeg [/]")
        code, _ = _run(bare_app, monkeypatch, "source", "add", site.url("/"))
        assert code == 0
        code, output = _run(bare_app, monkeypatch, "discover", "--once")
    assert code == 0, output
    assert "not_media" in output
    assert _flat("image/jpeg [/]") in _flat(output)


def test_file_names_and_locators_with_markup_and_control_codes_print_as_they_are(
    bare_app: SafeEye, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    inbox = tmp_path / "[bold]inbox[red]:x:"
    inbox.mkdir()
    code, output = _run(bare_app, monkeypatch, "source", "add", str(inbox))
    assert code == 0 and "[bold]inbox[red]:x:" in _flat(output)
    code, output = _run(bare_app, monkeypatch, "source", "list")
    assert code == 0 and "[bold]inbox[red]:x:" in _flat(output)

    gone = tmp_path / "[red]gone[/red]\x1b[2J\\.jpg"
    code, output = _run(bare_app, monkeypatch, "source", "upload", str(gone))
    assert code == 0, output
    assert "\x1b" not in output  # a terminal never sees the server's or the file's codes
    assert _flat("[red]gone[/red]\\x1b[2J\\.jpg: not_found") in _flat(output)


def test_plain_text_prints_literally_whatever_it_holds() -> None:
    from rich.console import Console

    console = Console(record=True, width=200)
    outside = ["image/jpeg [/]", "[bold]x[/bold]", "a\\", "[link=http://x]y[/link]", ":x:"]
    for text in outside:
        console.print(cli.plain(text))
    console.print(cli.plain("line\nbreak\x1b[31m\u202e"))
    printed = console.export_text().splitlines()
    assert printed == [*outside, "line\\nbreak\\x1b[31m\\u202e"]
