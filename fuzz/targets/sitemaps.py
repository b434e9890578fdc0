"""``ingest.sitemaps``: sitemap bodies (XML, gzip, text) and the hardened XML reader under them.

``parse_sitemap`` may only raise ``XmlRejected``; ``xml_root_name`` never raises.
"""

from __future__ import annotations

from safeeye.ingest.sitemaps import XmlRejected, parse_sitemap, xml_root_name

_SITEMAP = "https://pages.example/sitemaps/sitemap.xml"


def test_one_input(data: bytes) -> None:
    xml_root_name(data)
    try:
        found = parse_sitemap(data, _SITEMAP, max_bytes=256 * 1024, max_entries=100)
    except XmlRejected:
        return
    assert len(found.pages) <= 100 and len(found.sitemaps) <= 100 and len(found.media) <= 100
