"""Sitemaps (sitemaps.org urlset and sitemapindex, gzip or plain, image and video extensions),
and the hardened XML reading that sitemaps and feeds share.

XML from the web is hostile input: a document with an internal DTD subset or any entity
declaration is refused before expansion (billion laughs, external entities), gzip bodies are
decompressed only up to a cap, and element nesting is bounded. A declared encoding that expat
does not know (EUC-KR, Shift_JIS...) is decoded here; one that names no text encoding is read
as UTF-8, as browsers do.
"""

from __future__ import annotations

import codecs
import contextlib
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from xml.parsers import expat

from safeeye.errors import SafeEyeError
from safeeye.ingest.links import MediaLink
from safeeye.ingest.urls import normalize_url

MAX_XML_BYTES = 50 * 1024 * 1024  # the sitemaps.org limit on an uncompressed sitemap
MAX_ENTRIES = 50_000  # the sitemaps.org limit on URLs per sitemap
MAX_DEPTH = 64
MAX_TEXT = 256 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
# The encoding declaration of a document that starts in ASCII (EncName in the XML grammar).
_DECLARED_ENCODING = re.compile(
    rb"""<\?xml\s[^>]*?\bencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']"""
)
# Encodings expat reads itself, by ``codecs.lookup`` name (ASCII read as UTF-8, its superset);
# others are decoded before parsing.
_EXPAT_ENCODINGS = {"utf-8": "UTF-8", "ascii": "UTF-8", "iso8859-1": "ISO-8859-1"}
# Text codecs that would interpret the document rather than decode it.
_REFUSED_CODECS = frozenset({"idna", "punycode", "unicode_escape", "raw_unicode_escape"})

# (namespace URI, local name, attributes, direct text) of an element that has just ended, and
# the local names of its ancestors (outermost first).
EndHandler = Callable[[str, str, dict[str, str], str, tuple[str, ...]], None]


class XmlRejected(SafeEyeError):
    """An XML document (sitemap or feed) that is malformed, too large or dangerous to expand."""

    code = "xml"


@dataclass(frozen=True)
class Sitemap:
    """A parsed sitemap: page URLs, child sitemaps (an index) and the media it lists."""

    kind: Literal["urlset", "index"]
    pages: tuple[str, ...]
    sitemaps: tuple[str, ...]
    media: tuple[MediaLink, ...]


def gunzip_capped(body: bytes, max_bytes: int = MAX_XML_BYTES) -> bytes:
    """``body``, decompressed if it is gzip (by magic bytes); XmlRejected past ``max_bytes``."""
    if not body.startswith(_GZIP_MAGIC):
        return body[: max_bytes + 1]
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise XmlRejected(f"corrupt gzip body ({exc})", code="bad_gzip") from exc
    if len(data) > max_bytes:
        raise XmlRejected(f"decompresses to more than {max_bytes} bytes", code="too_large")
    return data


def parse_xml_safely(body: bytes, on_end: EndHandler, *, max_bytes: int = MAX_XML_BYTES) -> str:
    """Stream ``body`` (gzip allowed) through ``on_end`` element by element; the root's local name.

    XmlRejected for malformed XML, a body over ``max_bytes``, nesting deeper than MAX_DEPTH, or
    any entity declaration or internal DTD subset (an external DTD is named but never loaded).
    Namespaces are resolved leniently: a prefix that is never declared (sitemaps and feeds
    often forget ``xmlns:image`` or ``xmlns:media``) stands for itself instead of failing.
    """
    data = gunzip_capped(body, max_bytes)
    if len(data) > max_bytes:
        raise XmlRejected(f"larger than {max_bytes} bytes", code="too_large")
    data, encoding = _for_expat(data)
    parser = expat.ParserCreate(encoding)  # namespaces by hand, see above
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[_Open] = []
    root = ""

    def refuse(*_: object) -> None:
        raise XmlRejected("entity declarations are refused", code="xml_entities")

    def doctype(_name: str, _sysid: str | None, _pubid: str | None, internal: int) -> None:
        if internal:
            raise XmlRejected("an internal DTD subset is refused", code="xml_entities")

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal root
        if len(stack) >= MAX_DEPTH:
            raise XmlRejected(f"nested deeper than {MAX_DEPTH}", code="too_deep")
        namespaces = stack[-1].namespaces if stack else {}
        declared = {k[6:]: v for k, v in attrs.items() if k.startswith("xmlns:")}
        if "xmlns" in attrs:
            declared[""] = attrs["xmlns"]
        if declared:
            namespaces = {**namespaces, **declared}
        prefix, _, local = name.rpartition(":")
        root = root or local
        plain = {k.rpartition(":")[2]: v for k, v in attrs.items() if not k.startswith("xmlns")}
        stack.append(_Open(namespaces.get(prefix, prefix), local, plain, namespaces))

    def text(chars: str) -> None:
        if stack and stack[-1].size < MAX_TEXT:
            stack[-1].text.append(chars)
            stack[-1].size += len(chars)

    def end(_name: str) -> None:
        done = stack.pop()
        text = "".join(done.text)[:MAX_TEXT]
        on_end(done.ns, done.local, done.attrs, text, tuple(e.local for e in stack))

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XmlRejected(f"malformed XML ({expat.ErrorString(exc.code)})") from exc
    return root


@dataclass
class _Open:
    """An element being read: its namespace URI (or bare prefix), name, attributes, text."""

    ns: str
    local: str
    attrs: dict[str, str]
    namespaces: dict[str, str]
    text: list[str] = field(default_factory=list)
    size: int = 0


def _for_expat(data: bytes) -> tuple[bytes, str]:
    """``data`` and the encoding to tell expat, which then never reads the declaration itself.

    Expat reads UTF-8, UTF-16, ISO-8859-1 and ASCII itself and fails on any other declared
    encoding; such a document is decoded here (undecodable bytes replaced) and handed over as
    UTF-8. A declaration naming no usable text encoding is read as UTF-8, as browsers do.
    """
    if data.startswith(codecs.BOM_UTF8):
        return data, "UTF-8"  # a byte order mark outranks the declaration
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data, "UTF-16"
    match = _DECLARED_ENCODING.match(data)
    if match is None:
        return data, "UTF-8"  # the XML default
    try:
        name: str | None = codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        name = None
    if name in _EXPAT_ENCODINGS:
        return data, _EXPAT_ENCODINGS[name]
    if name is None or name in _REFUSED_CODECS or name.startswith(("utf-16", "utf-32")):
        name = "utf-8"  # (the declaration was readable as ASCII, so it is not UTF-16 or -32)
    try:
        text = data.decode(name, "replace")
    except (LookupError, ValueError):  # a codec that is not a text encoding (rot13, hex...)
        text = data.decode("utf-8", "replace")
    return text.encode("utf-8", "replace"), "UTF-8"


def xml_root_name(body: bytes) -> str | None:
    """The local name of the root element of an XML (or gzipped XML) body, or None if not XML."""
    head = body[:65536]
    if head.startswith(_GZIP_MAGIC):
        try:
            head = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(head, 65536)
        except zlib.error:
            return None
    found: list[str] = []

    class _Found(Exception):
        pass

    def stop() -> None:
        raise _Found

    def start(name: str, _attrs: dict[str, str]) -> None:
        found.append(name.rpartition(":")[2])
        raise _Found

    head, encoding = _for_expat(head)
    # No namespaces: an undeclared prefix must not hide the root.
    parser = expat.ParserCreate(encoding)
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = start
    parser.EntityDeclHandler = lambda *_: stop()  # a document that declares entities is no kind
    with contextlib.suppress(_Found, expat.ExpatError):
        parser.Parse(head, False)
    return found[0] if found else None


def parse_sitemap(
    body: bytes,
    sitemap_url: str,
    *,
    max_bytes: int = MAX_XML_BYTES,
    max_entries: int = MAX_ENTRIES,
) -> Sitemap:
    """The pages, child sitemaps and image/video entries of a sitemap body (XML, gzip or text).

    URLs are normalised against ``sitemap_url``; invalid ones are dropped; each list is capped at
    ``max_entries``. A media entry's ``page_url`` is the ``<loc>`` of its ``<url>``.
    """
    data = gunzip_capped(body, max_bytes)
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return _parse_text_sitemap(data, max_entries)
    pages: dict[str, None] = {}
    children: dict[str, None] = {}
    media: dict[str, MediaLink] = {}
    entry_loc: list[str] = []
    entry_media: list[tuple[str, str]] = []

    def on_end(_ns: str, local: str, _attrs: dict[str, str], text: str, parents: tuple) -> None:
        parent = parents[-1] if parents else ""
        if local == "loc" and parent == "url":
            entry_loc.append(text)
        elif local == "loc" and parent == "sitemap":
            url = normalize_url(text.strip(), sitemap_url)
            if url and len(children) < max_entries:
                children.setdefault(url)
        elif local == "loc" and parent == "image":
            entry_media.append((text, "sitemap:image"))
        elif local == "content_loc" and parent == "video":
            entry_media.append((text, "sitemap:video"))
        elif local == "thumbnail_loc" and parent == "video":
            entry_media.append((text, "sitemap:video-thumbnail"))
        elif local == "url":
            page = normalize_url(entry_loc[0].strip(), sitemap_url) if entry_loc else None
            if page is not None:
                if len(pages) < max_entries:
                    pages.setdefault(page)
                for value, how in entry_media:
                    url = normalize_url(value.strip(), page)
                    if url and url not in media and len(media) < max_entries:
                        media[url] = MediaLink(url, page, how)
            entry_loc.clear()
            entry_media.clear()

    root = parse_xml_safely(data, on_end, max_bytes=max_bytes)
    if root not in ("urlset", "sitemapindex"):
        raise XmlRejected(f"not a sitemap (root element <{root[:40]}>)", code="not_sitemap")
    kind: Literal["urlset", "index"] = "index" if root == "sitemapindex" else "urlset"
    return Sitemap(kind, tuple(pages), tuple(children), tuple(media.values()))


def _parse_text_sitemap(data: bytes, max_entries: int) -> Sitemap:
    """A sitemaps.org text sitemap: one absolute URL per line (anything else, even a relative
    URL, is skipped: resolving junk would invent pages)."""
    pages: dict[str, None] = {}
    for line in re.split(rb"[\r\n]+", data):
        text = line.decode("utf-8", "replace").strip()
        url = normalize_url(text) if text.lower().startswith(("http://", "https://")) else None
        if url:
            pages.setdefault(url)
            if len(pages) >= max_entries:
                break
    return Sitemap("urlset", tuple(pages), (), ())
