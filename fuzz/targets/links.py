"""``ingest.links``: links of an HTML page (any bytes, any declared charset), ``srcset`` values and
Content-Type charsets. Documented never to raise."""

from __future__ import annotations

from fuzz.targets._support import text
from safeeye.ingest.links import charset_of, extract_links, is_media_url, parse_srcset

_PAGE = "https://pages.example/dir/page.html?x=1"
# Declared charsets a server might send: real ones, odd ones, and names that are not text codecs.
_CHARSETS = (None, "utf-8", "euc-kr", "shift_jis", "utf-16", "utf-7", "idna", "rot13", "x-junk")


def test_one_input(data: bytes) -> None:
    declared = _CHARSETS[len(data) % len(_CHARSETS)]
    for charset in {None, declared}:
        found = extract_links(data, _PAGE, charset, max_links=50, max_seconds=2.0)
        assert len(found.pages) <= 50 and len(found.media) <= 50 and len(found.feeds) <= 50
        for link in found.media:
            assert link.url.startswith(("http://", "https://")), link
    value = text(data[:2048])
    parse_srcset(value)
    charset_of(value)
    is_media_url(value)
