"""Links in an HTML page: the pages and feeds it leads to and the images and videos it shows.

Built on the standard library's forgiving ``html.parser``: broken markup, binary junk and huge
bodies yield what could be read (bounded by ``max_bytes`` and ``max_links``), never an error.
"""

from __future__ import annotations

import codecs
import re
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from posixpath import splitext
from urllib.parse import urlsplit

from safeeye.ingest.urls import normalize_url

MAX_HTML_BYTES = 5 * 1024 * 1024
MAX_LINKS = 5000
PARSE_SECONDS = 4.0  # a plain 5 MB page takes about 4 s to parse here
_CHUNK = 64 * 1024
_MAX_TAIL = 4096

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".avif"}
)
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi"})
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml"})

_LAZY_SRC = ("src", "data-src", "data-original", "data-lazy-src")
_LAZY_SRCSET = ("srcset", "data-srcset")
# Open Graph and Twitter card properties that name the page's image or video, and the name
# each is reported under.
_META_MEDIA = {
    "og:image": "og:image",
    "og:image:url": "og:image",
    "og:image:secure_url": "og:image",
    "og:video": "og:video",
    "og:video:url": "og:video",
    "og:video:secure_url": "og:video",
    "twitter:image": "twitter:image",
    "twitter:image:src": "twitter:image",
    "twitter:player:stream": "twitter:video",
}
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]{1,40})""", re.I
)
_REFRESH_URL = re.compile(r"""url\s*=\s*["']?([^"'\s]+)""", re.I)
# Codecs that are not plain text encodings or that reject errors="replace".
_REFUSED_CODECS = frozenset({"idna", "punycode", "unicode_escape", "raw_unicode_escape"})


@dataclass(frozen=True)
class MediaLink:
    """An image or video ``url`` linked from ``page_url``; ``how`` names the markup (``img``)."""

    url: str
    page_url: str
    how: str


@dataclass(frozen=True)
class PageLinks:
    """What a page links to, normalised and deduplicated, in document order."""

    pages: tuple[str, ...]
    media: tuple[MediaLink, ...]
    feeds: tuple[str, ...] = ()


def is_media_url(url: str) -> bool:
    """Whether ``url``'s path ends in an image or video file extension."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return False
    return splitext(path)[1].lower() in MEDIA_EXTENSIONS


def extract_links(
    html: bytes,
    page_url: str,
    declared_encoding: str | None = None,
    *,
    max_bytes: int = MAX_HTML_BYTES,
    max_links: int = MAX_LINKS,
    max_seconds: float = PARSE_SECONDS,
) -> PageLinks:
    """Every page, feed and media link in ``html`` (read up to ``max_bytes``), made absolute.

    ``<base href>`` is honoured; each of the three lists keeps at most ``max_links`` entries.
    Markup left unterminated at the end (an open tag or comment) is dropped, as browsers do,
    and parsing stops after about ``max_seconds`` on pathological input.
    """
    parser = _LinkParser(max_links * 4)
    _parse(parser, _decode(html[:max_bytes], declared_encoding), max_seconds)
    base = page_url
    if parser.base is not None:
        base = normalize_url(parser.base, page_url) or page_url
    pages: dict[str, None] = {}
    feeds: dict[str, None] = {}
    media: dict[str, MediaLink] = {}
    for role, value, how in parser.found:
        url = normalize_url(value, base)
        if url is None:
            continue
        if role == "a":
            role = "media" if is_media_url(url) else "page"
        if role == "media":
            if url not in media and len(media) < max_links:
                media[url] = MediaLink(url, page_url, how)
        elif role == "feed":
            if len(feeds) < max_links:
                feeds.setdefault(url)
        elif len(pages) < max_links:
            pages.setdefault(url)
    return PageLinks(tuple(pages), tuple(media.values()), tuple(feeds))


def _parse(parser: _LinkParser, text: str, max_seconds: float) -> None:
    # html.parser rescans an unterminated construct from its start on every call and, at close(),
    # once per "<" inside it: quadratic on input such as "<a<a<a...". Feeding in chunks under a
    # deadline bounds the first; closing only over a short unparsed tail bounds the second.
    deadline = time.monotonic() + max_seconds
    try:
        for start in range(0, len(text), _CHUNK):
            parser.feed(text[start : start + _CHUNK])
            if time.monotonic() > deadline or len(parser.found) >= parser.max_found:
                return
        if len(parser.rawdata) <= _MAX_TAIL:
            parser.close()
    except Exception:  # html.parser can still trip on hostile markup; keep what it read
        pass


def parse_srcset(value: str) -> list[str]:
    """The URLs of a ``srcset`` attribute (descriptors dropped; commas inside URLs kept)."""
    urls = []
    pos, end = 0, len(value)
    while pos < end:
        while pos < end and (value[pos].isspace() or value[pos] == ","):
            pos += 1
        start = pos
        while pos < end and not value[pos].isspace():
            pos += 1
        url = value[start:pos]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            depth = 0  # skip the descriptors, up to the next comma outside parentheses
            while pos < end and (value[pos] != "," or depth):
                depth += {"(": 1, ")": -1}.get(value[pos], 0)
                pos += 1
        if url:
            urls.append(url)
    return urls


def charset_of(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type header, if any."""
    if not content_type:
        return None
    match = re.search(r"charset\s*=\s*[\"']?([^\s;\"']+)", content_type, re.I)
    return match.group(1) if match else None


def _decode(data: bytes, declared: str | None) -> str:
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, "replace")
    if declared is None:
        match = _META_CHARSET.search(data[:4096])
        declared = match.group(1).decode("ascii") if match else None
    encoding = "utf-8"
    if declared:
        try:
            name = codecs.lookup(declared).name
        except LookupError:
            name = "utf-8"
        # A page without a BOM that claims UTF-16/32 is ASCII-compatible in practice (WHATWG).
        if name not in _REFUSED_CODECS and not name.startswith(("utf-16", "utf-32")):
            encoding = name
    try:
        return data.decode(encoding, "replace")
    except (LookupError, UnicodeError, ValueError):
        return data.decode("utf-8", "replace")


class _LinkParser(HTMLParser):
    """Collects raw link values as (role, value, how); resolution happens afterwards."""

    def __init__(self, max_found: int) -> None:
        super().__init__(convert_charrefs=True)
        self.max_found = max_found
        self.base: str | None = None
        self.found: list[tuple[str, str, str]] = []
        self._audio = 0

    def _add(self, role: str, value: str | None, how: str) -> None:
        if value and len(self.found) < self.max_found:
            self.found.append((role, value, how))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr: dict[str, str] = {}
        for name, value in attrs:
            if value is not None:
                attr.setdefault(
                    name, value
                )  # the first of duplicated attributes wins, as in browsers
        get = attr.get
        if tag in ("a", "area"):
            self._add("a", get("href"), "a")
        elif tag == "img":
            for name in _LAZY_SRC:
                self._add("media", get(name), "img")
            for name in _LAZY_SRCSET:
                for url in parse_srcset(get(name, "")):
                    self._add("media", url, "img")
        elif tag == "source" and not self._audio:
            self._add("media", get("src"), "source")
            for url in parse_srcset(get("srcset", "")):
                self._add("media", url, "source")
        elif tag == "video":
            self._add("media", get("src"), "video")
            self._add("media", get("poster"), "poster")
        elif tag == "audio":
            self._audio += 1
        elif tag in ("frame", "iframe"):
            self._add("page", get("src"), tag)
        elif tag == "meta":
            self._meta(attr)
        elif tag == "link":
            rel = get("rel", "").lower().split()
            if "alternate" in rel and get("type", "").lower().strip() in FEED_TYPES:
                self._add("feed", get("href"), "feed")
        elif tag == "embed":
            self._add("a", get("src"), "embed")
        elif tag == "object":
            self._add("a", get("data"), "object")
        elif tag == "base" and self.base is None and get("href"):
            self.base = get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag == "audio" and self._audio:
            self._audio -= 1

    def _meta(self, attr: dict[str, str]) -> None:
        key = (attr.get("property") or attr.get("name") or "").strip().lower()
        if key in _META_MEDIA:
            self._add("media", attr.get("content", "").strip(), _META_MEDIA[key])
        elif attr.get("http-equiv", "").strip().lower() == "refresh":
            match = _REFRESH_URL.search(attr.get("content", ""))
            if match:
                self._add("a", match.group(1), "refresh")
