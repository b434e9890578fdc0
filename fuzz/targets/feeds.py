"""``ingest.feeds``: RSS 2.0, RSS 1.0 (RDF) and Atom bodies, with the HTML inside entries.

``parse_feed`` may only raise ``XmlRejected``.
"""

from __future__ import annotations

from safeeye.ingest.feeds import parse_feed
from safeeye.ingest.sitemaps import XmlRejected

_FEED = "https://pages.example/feed.xml"


def test_one_input(data: bytes) -> None:
    try:
        found = parse_feed(data, _FEED, max_bytes=256 * 1024, max_entries=100)
    except XmlRejected:
        return
    assert len(found.pages) <= 100 and len(found.media) <= 100
