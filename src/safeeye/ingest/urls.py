"""URL normalisation: one canonical form per address, the key that keeps a crawl from revisiting.

``normalize_url`` resolves a link against its page and returns the form the crawler fetches and
deduplicates on, or None for anything a crawl must not follow (not http(s), credentials in the
URL, an unparsable host, an overlong address).
"""

from __future__ import annotations

import ipaddress
import re
import string
from urllib.parse import urljoin, urlsplit, urlunsplit

MAX_URL_LENGTH = 2048

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_PATH_SAFE = _UNRESERVED | frozenset("!$&'()*+,;=:@/")
_QUERY_SAFE = _PATH_SAFE | frozenset("?")
_HEX = frozenset(string.hexdigits)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_RE = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")
# Browsers drop tabs and newlines anywhere in a URL (WHATWG URL standard); pages rely on it.
_TAB_NEWLINE = re.compile(r"[\t\n\r]")
_EDGE_CONTROL = re.compile(r"^[\x00-\x20]+|[\x00-\x20]+$")
_JSESSIONID = re.compile(r";jsessionid=[^/?#]*", re.IGNORECASE)
# Query parameters that name a session or a click, never the content: two URLs that differ only
# in these are one page, and keeping them would let session ids grow an endless frontier.
_SESSION_PARAMS = frozenset(
    {
        "phpsessid",
        "jsessionid",
        "aspsessionid",
        "sessionid",
        "session_id",
        "cfid",
        "cftoken",
        "fbclid",
        "gclid",
        "msclkid",
    }
)


def normalize_url(
    url: str, base: str | None = None, *, max_length: int = MAX_URL_LENGTH
) -> str | None:
    """The canonical absolute form of ``url`` (resolved against ``base``), or None to skip it.

    Canonical means: lowercase scheme and host (IDNA for non-ASCII hosts), no default port, no
    fragment, dot segments resolved, an empty path as ``/``, unreserved characters unescaped and
    other escapes in uppercase hex, characters that need it percent-encoded as UTF-8, and
    session and click-tracking query parameters removed. Query order is kept (it may matter).
    """
    if not isinstance(url, str) or len(url) > max_length:
        return None
    url = _EDGE_CONTROL.sub("", _TAB_NEWLINE.sub("", url))
    if not url:
        return None
    try:
        if base is not None:
            url = urljoin(base, url)
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or "@" in parts.netloc:
        return None  # not a web page, or credentials in the URL (which we must not send)
    host = _normalize_host(parts.hostname or "")
    if host is None:
        return None
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _JSESSIONID.sub("", parts.path)
    path = _remove_dot_segments(_normalize_escapes(path, _PATH_SAFE) or "/")
    query = _normalize_query(parts.query)
    result = urlunsplit((scheme, netloc, path, query, ""))
    return result if len(result) <= max_length else None


def _normalize_host(host: str) -> str | None:
    host = host.rstrip(".")
    if not host or "%" in host:
        return None
    if ":" in host:
        try:
            return f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    host = host.lower()
    return host if len(host) <= 253 and _HOST_RE.fullmatch(host) else None


def _normalize_escapes(text: str, safe: frozenset[str]) -> str:
    if all(c in safe for c in text):
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "%" and text[i + 1 : i + 2] in _HEX and text[i + 2 : i + 3] in _HEX:
            decoded = chr(int(text[i + 1 : i + 3], 16))
            out.append(decoded if decoded in _UNRESERVED else text[i : i + 3].upper())
            i += 3
            continue
        if c in safe:
            out.append(c)
        else:
            out.extend(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
        i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    segments = path.split("/")[1:]
    out: list[str] = []
    for segment in segments:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    if segments and segments[-1] in (".", ".."):
        out.append("")  # "/a/b/.." names the directory "/a/"
    return "/" + "/".join(out)


def _normalize_query(query: str) -> str:
    if not query:
        return ""
    kept = []
    for param in query.split("&"):
        if not param:
            continue
        name = param.split("=", 1)[0].lower()
        if name in _SESSION_PARAMS or name.startswith("utm_"):
            continue
        kept.append(_normalize_escapes(param, _QUERY_SAFE))
    return "&".join(kept)
