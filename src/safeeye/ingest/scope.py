"""What a site crawl may visit and report: the hosts and paths a center names.

The rules:

* A **page** (HTML page, feed, sitemap entry) is in scope when its host is one of ``hosts``, its
  path matches one of ``include`` (or ``include`` is empty) and matches none of ``exclude``.
  Exclude wins over include.
* **Sitemaps and feeds** the crawler finds itself (``/sitemap.xml``, sitemap index children,
  ``<link rel=alternate>`` feeds) need a scope host and no ``exclude`` match; ``include`` does
  not apply, because a site's index lists the included pages from outside them.
* A **media file** is in scope when an in-scope page, feed or sitemap entry links to it, and its
  host is a scope host, one of ``media_hosts``, or anything at all when ``media_any_host`` is true
  (the default: sites keep their images on CDNs). Path patterns do not apply to media, whose
  paths (``/wp-content/uploads/...``) rarely look like the pages that show them. Media on an
  out-of-scope page are never reported, because that page is never fetched.

Hosts: ``example.com`` matches that host on any port, ``example.com:8080`` only that port, and
``*.example.com`` any subdomain (not the apex: list both when both are meant). Hosts are
compared in the normalised (lowercase, IDNA) form.

Path patterns are globs (not regexes, which a person who runs a center should not need to
write), matched against the whole normalised path without the query: ``*`` matches within one
path segment (no ``/``), ``**`` matches across segments, ``/**`` at the end also matches the
directory itself (``/gallery/**`` matches ``/gallery``, ``/gallery/`` and ``/gallery/a/b.html``)
and ``/**/`` matches any number of directories, none included (``/a/**/b`` matches ``/a/b``).
Every other character is literal; matching is case-sensitive, as paths are. ``check_glob`` says
whether a pattern a person typed is one (and spells it as the normalised paths it is matched to).

The crawl's start URLs are visited whatever the path patterns say (``crawl``): the patterns
decide which links are followed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, urlsplit

from safeeye.ingest.urls import normalize_url


@dataclass(frozen=True)
class CrawlScope:
    """The hosts and path patterns of a site crawl (rules in the module docstring)."""

    hosts: tuple[str, ...]
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    media_hosts: tuple[str, ...] = ()
    media_any_host: bool = True

    def __post_init__(self) -> None:
        for entry in (*self.hosts, *self.media_hosts):
            _host_entry(entry)  # fail at construction on an entry that is not a host
        for pattern in (*self.include, *self.exclude):
            glob_to_regex(pattern)  # fail at construction on a pattern that cannot compile

    @classmethod
    def for_seeds(cls, seeds: Iterable[str], **options: object) -> CrawlScope:
        """A scope over the hosts (with their ports) of ``seeds``."""
        hosts = {urlsplit(url).netloc for url in map(normalize_url, seeds) if url}
        return cls(tuple(sorted(hosts)), **options)  # type: ignore[arg-type]

    def allows_page(self, url: str) -> bool:
        """Whether the crawler may visit ``url`` as a page."""
        parts = _parts(url)
        if parts is None or not _host_matches(parts[0], parts[1], self.hosts):
            return False
        path = parts[2]
        if self.include and not any(_matches(p, path) for p in self.include):
            return False
        return not any(_matches(p, path) for p in self.exclude)

    def allows_host(self, url: str) -> bool:
        """Whether ``url`` is on one of the scope's hosts (whatever its path)."""
        parts = _parts(url)
        return parts is not None and _host_matches(parts[0], parts[1], self.hosts)

    def allows_index(self, url: str) -> bool:
        """Whether the crawler may fetch ``url`` as a sitemap or feed of the site."""
        parts = _parts(url)
        if parts is None or not _host_matches(parts[0], parts[1], self.hosts):
            return False
        return not any(_matches(p, parts[2]) for p in self.exclude)

    def allows_media(self, url: str) -> bool:
        """Whether a media ``url`` linked from an in-scope page is in scope."""
        parts = _parts(url)
        if parts is None:
            return False
        if self.media_any_host:
            return True
        host, port, _ = parts
        return _host_matches(host, port, self.hosts) or _host_matches(host, port, self.media_hosts)


MAX_GLOB_LENGTH = 1000


def check_glob(pattern: str) -> str:
    """``pattern`` as the path glob it is matched as: with its leading ``/``, and spaces and
    non-ASCII letters percent-encoded as in a normalised URL. ValueError, saying what to write
    instead, when it cannot be one (a URL, a query, control characters, ``***``)."""
    text = pattern.strip()
    if not text:
        raise ValueError("an empty path pattern (write e.g. /gallery/**)")
    if len(text) > MAX_GLOB_LENGTH:
        raise ValueError(f"a path pattern of more than {MAX_GLOB_LENGTH} characters")
    if "://" in text or text.startswith("//"):
        raise ValueError("a path pattern, not a URL: write the path only, e.g. /gallery/**")
    if any(ch in "?#" or not ch.isprintable() for ch in text if ch != " "):
        raise ValueError("a path pattern has no query, fragment or control characters")
    if "***" in text:
        raise ValueError("'***' in a path pattern: use * (one segment) or ** (any depth)")
    text = "".join(quote(ch, safe="") if ch == " " or not ch.isascii() else ch for ch in text)
    return text if text.startswith("/") else "/" + text


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """The compiled regex for a path glob (``*`` within a segment, ``**`` across segments)."""
    return _compile(pattern if pattern.startswith("/") else "/" + pattern)


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("/**/", i):
            out.append("/(?:.*/)?")
            i += 4
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _matches(pattern: str, path: str) -> bool:
    return glob_to_regex(pattern).fullmatch(path) is not None


def _parts(url: str) -> tuple[str, int, str] | None:
    """(host, effective port, path) of ``url`` in normalised form."""
    normalized = normalize_url(url)
    if normalized is None:
        return None
    parts = urlsplit(normalized)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "", port, parts.path


@lru_cache(maxsize=1024)
def _host_entry(entry: str) -> tuple[str, bool, int | None]:
    """(host, is a ``*.`` wildcard, port or None) of a scope host entry; ValueError if invalid."""
    text = entry.strip().lower()
    try:
        parts = urlsplit(text if "://" in text else f"http://{text}")
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a host: {entry[:100]!r}") from exc
    host = parts.hostname or ""
    wildcard = host.startswith("*.")
    host = host.removeprefix("*.")
    url = normalize_url(f"http://[{host}]/" if ":" in host else f"http://{host}/")
    name = urlsplit(url).hostname if url else None
    if not name:
        raise ValueError(f"not a host: {entry[:100]!r}")
    return name, wildcard, port


def _host_matches(host: str, port: int, entries: tuple[str, ...]) -> bool:
    for entry in entries:
        name, wildcard, entry_port = _host_entry(entry)
        if entry_port is not None and entry_port != port:
            continue
        if host == name if not wildcard else host.endswith("." + name):
            return True
    return False
