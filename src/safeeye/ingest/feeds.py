"""RSS 2.0, RSS 1.0 (RDF) and Atom feeds: the entries' pages and the images and videos they carry.

Media come from RSS ``<enclosure>``, Media RSS ``<media:content>``/``<media:thumbnail>``, Atom
``<link rel="enclosure">`` and the images in an entry's HTML (``<description>``,
``<content:encoded>``, Atom ``<content>``/``<summary>``). Audio enclosures are left out. Parsing
goes through the hardened reader in ``sitemaps``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from safeeye.ingest.links import MediaLink, extract_links, is_media_url
from safeeye.ingest.sitemaps import MAX_ENTRIES, MAX_XML_BYTES, XmlRejected, parse_xml_safely
from safeeye.ingest.urls import normalize_url

_KINDS: dict[str, Literal["rss", "atom", "rdf"]] = {"rss": "rss", "feed": "atom", "RDF": "rdf"}
_ENTRY = frozenset({"item", "entry"})
_HTML_TEXT = frozenset({"description", "encoded", "content", "summary"})
_VISUAL_MEDIUM = frozenset({"image", "video"})


@dataclass(frozen=True)
class Feed:
    """A parsed feed: the pages its entries link to and the media they carry."""

    kind: Literal["rss", "atom", "rdf"]
    pages: tuple[str, ...]
    media: tuple[MediaLink, ...]


@dataclass
class _Entry:
    link: str | None = None
    media: list[tuple[str, str]] = field(default_factory=list)
    html: list[str] = field(default_factory=list)


def parse_feed(
    body: bytes,
    feed_url: str,
    *,
    max_bytes: int = MAX_XML_BYTES,
    max_entries: int = MAX_ENTRIES,
) -> Feed:
    """The entry pages and media of an RSS/Atom body; XmlRejected if it is not a safe feed.

    URLs are resolved against ``feed_url`` (``xml:base`` is not honoured). A medium's
    ``page_url`` is its entry's link, or ``feed_url`` when the entry has none.
    """
    pages: dict[str, None] = {}
    media: dict[str, MediaLink] = {}
    entry = _Entry()

    def add_page(value: str | None) -> None:
        url = normalize_url(value.strip(), feed_url) if value else None
        if url and len(pages) < max_entries:
            pages.setdefault(url)

    def add_media(url: str | None, page_url: str, how: str) -> None:
        if url and url not in media and len(media) < max_entries:
            media[url] = MediaLink(url, page_url, how)

    def on_end(ns: str, local: str, attrs: dict[str, str], text: str, parents: tuple) -> None:
        nonlocal entry
        in_entry = bool(_ENTRY.intersection(parents))
        if local in _ENTRY:
            _flush(entry, feed_url, add_page, add_media)
            entry = _Entry()
        elif local == "link":
            _link(attrs, text, entry if in_entry else None, add_page)
        elif not in_entry:
            return
        elif local == "enclosure" and _visual(attrs.get("url", ""), attrs.get("type", ""), ""):
            entry.media.append((attrs.get("url", ""), "enclosure"))  # no url: dropped later
        elif ("search.yahoo.com/mrss" in ns or ns == "media") and local in ("content", "thumbnail"):
            url = attrs.get("url", "")
            if local == "thumbnail" or _visual(url, attrs.get("type", ""), attrs.get("medium", "")):
                entry.media.append((url, f"media:{local}"))
        elif local in _HTML_TEXT and text.strip():
            if local in ("description", "encoded") or attrs.get("type", "") in (
                "html",
                "text/html",
            ):
                entry.html.append(text)
        elif local == "img" and attrs.get("src"):
            entry.media.append((attrs["src"], "img"))  # Atom type="xhtml" content

    root = parse_xml_safely(body, on_end, max_bytes=max_bytes)
    if root not in _KINDS:
        raise XmlRejected(f"not a feed (root element <{root[:40]}>)", code="not_feed")
    return Feed(_KINDS[root], tuple(pages), tuple(media.values()))


def _link(
    attrs: dict[str, str], text: str, entry: _Entry | None, add_page: Callable[[str | None], None]
) -> None:
    if "href" not in attrs:  # RSS: the link is the element's text
        value: str | None = text.strip() or None
        how = "alternate"
    else:
        value, how = attrs["href"], attrs.get("rel", "alternate").strip().lower()
    if entry is None:
        if how in ("alternate", "next"):
            add_page(value)  # the site's home page, or the next page of a paged feed
    elif how == "alternate" and entry.link is None:
        entry.link = value
    elif how == "enclosure" and value and _visual(value, attrs.get("type", ""), ""):
        entry.media.append((value, "enclosure"))


def _flush(
    entry: _Entry,
    feed_url: str,
    add_page: Callable[[str | None], None],
    add_media: Callable[[str | None, str, str], None],
) -> None:
    page_url = feed_url
    if entry.link:
        page_url = normalize_url(entry.link.strip(), feed_url) or feed_url
        add_page(entry.link)
    for value, how in entry.media:  # feed-level URLs resolve against the feed, not the entry
        add_media(normalize_url(value.strip(), feed_url), page_url, how)
    for html in entry.html:
        links = extract_links(html.encode("utf-8"), page_url, "utf-8", max_links=500)
        for link in links.media:
            add_media(link.url, page_url, link.how)
        for url in links.pages:
            add_page(url)


def _visual(url: str, mime: str, medium: str) -> bool:
    """Whether an enclosure is an image or video (by medium, then MIME type, then extension)."""
    medium, mime = medium.strip().lower(), mime.strip().lower()
    if medium:
        return medium in _VISUAL_MEDIUM
    if mime.startswith(("image/", "video/")):
        return True
    if mime.startswith(("audio/", "text/")):
        return False
    return is_media_url(url)
