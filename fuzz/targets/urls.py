"""``ingest.urls.normalize_url``: any string, resolved against any base, gives one canonical
http(s) URL or None, and never raises. The canonical form is a fixed point: normalising it
again changes nothing (else one page would be crawled under two keys)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fuzz.targets._support import split_once, text
from safeeye.ingest.urls import MAX_URL_LENGTH, normalize_url


def test_one_input(data: bytes) -> None:
    base_bytes, url_bytes = split_once(data)
    base, url = text(base_bytes), text(url_bytes)
    for found in (normalize_url(url), normalize_url(url, base or None)):
        if found is None:
            continue
        assert len(found) <= MAX_URL_LENGTH, len(found)
        assert urlsplit(found).scheme in ("http", "https"), found
        assert found.isascii(), found
        assert normalize_url(found) == found, (found, normalize_url(found))
