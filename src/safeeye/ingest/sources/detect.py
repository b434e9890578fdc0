"""Which kind of source a person means by what they typed: a folder, an export, a URL, a site."""

from __future__ import annotations

from pathlib import Path

from safeeye.errors import ValidationError

TELEGRAM_EXPORT_FILE = "result.json"


def detect_kind(target: str, *, crawl: bool = False) -> str:
    """The kind of source ``target`` names: "telegram" for a Telegram Desktop export (a folder
    holding ``result.json``, or that file), "folder" for another folder, else a URL: "crawl"
    when a crawl of its site is asked for, "url" otherwise. ``ValidationError`` for a single
    other file, a crawl of a folder, or text that is neither a folder nor a URL."""
    path = Path(target).expanduser()
    try:
        is_dir, is_file = path.is_dir(), path.is_file()
        export = is_dir and (path / TELEGRAM_EXPORT_FILE).is_file()
    except (OSError, ValueError):  # a name the file system cannot hold is no local path
        is_dir = is_file = export = False
    if is_file and path.name == TELEGRAM_EXPORT_FILE:
        export = True
    if (is_dir or export) and crawl:
        raise ValidationError("only a site (an http(s) URL) can be crawled, not a folder")
    if export:
        return "telegram"
    if is_dir:
        return "folder"
    if is_file:
        raise ValidationError("a single file is not a source to watch: upload or scan it")
    if "://" not in target:
        raise ValidationError(
            f"neither a folder nor an http(s) URL: {target[:200]}", code="bad_url"
        )
    return "crawl" if crawl else "url"
