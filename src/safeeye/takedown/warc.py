"""A kept page as a WARC file (ISO 28500, one gzip member a record): what archives read."""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus

from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from safeeye import __version__

#: Headers that describe the bytes on the wire, not the body kept: the fetcher undid the
#: Content-Encoding and the chunking, so they are kept under ``X-Archive-Orig-`` names.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


@dataclass(frozen=True)
class FetchedPage:
    """A page as it was fetched: where, when, the HTTP facts and the (decoded) body."""

    url: str  # the URL whose response this is (after redirects)
    fetched_at: datetime
    status: int
    headers: dict[str, str]
    server_ip: str | None
    body: bytes


def page_warc(page: FetchedPage) -> bytes:
    """A gzipped WARC/1.1 file: a ``warcinfo`` record, then the page as a ``response`` record
    (WARC-Target-URI, WARC-Date, WARC-IP-Address, the status line and headers as fetched, a
    SHA-256 payload digest)."""
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="1.1")
    info = writer.create_warcinfo_record(
        "page.warc.gz",
        {"software": f"safeeye/{__version__}", "format": "WARC File Format 1.1"},
    )
    writer.write_record(info)
    warc_headers = {
        "WARC-Date": _warc_date(page.fetched_at),
        "WARC-Payload-Digest": "sha256:" + _base32(hashlib.sha256(page.body).digest()),
    }
    if page.server_ip:
        warc_headers["WARC-IP-Address"] = page.server_ip
    record = writer.create_warc_record(
        page.url,
        "response",
        payload=io.BytesIO(page.body),
        length=len(page.body),
        warc_headers_dict=warc_headers,
        http_headers=StatusAndHeaders(
            _status_line(page.status), _http_headers(page.headers, len(page.body)), "HTTP/1.1"
        ),
    )
    writer.write_record(record)
    return out.getvalue()


def _warc_date(when: datetime) -> str:
    """ISO 8601 in UTC with microseconds, as WARC/1.1 writes it (a naive time is UTC)."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return datetime_to_iso_date(when, use_micros=True)


def _base32(digest: bytes) -> str:
    return base64.b32encode(digest).decode("ascii")


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _http_headers(headers: dict[str, str], size: int) -> list[tuple[str, str]]:
    kept: list[tuple[str, str]] = []
    for name, value in sorted(headers.items()):
        if name.lower() in _WIRE_HEADERS:
            kept.append((f"X-Archive-Orig-{name}", value))
        else:
            kept.append((name, value))
    kept.append(("Content-Length", str(size)))
    return kept
