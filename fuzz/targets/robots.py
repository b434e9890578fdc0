"""``ingest.robots``: rules from a robots.txt body (decoded as the fetcher decodes it), then the
questions the fetcher asks of them. None of these may raise."""

from __future__ import annotations

from fuzz.targets._support import split_once
from safeeye.ingest.robots import RobotsRules
from safeeye.ingest.urls import normalize_url

_AGENTS = ("safeeye/0.1 (+https://safeeye.example/bot)", "*", "")
_URLS = ("https://pages.example/", "https://pages.example/a/b.jpg?q=1", "https://pages.example/%7E")


def test_one_input(data: bytes) -> None:
    rules = RobotsRules.parse(data.decode("utf-8", errors="replace"), 60.0)
    # The first line of the body doubles as a path asked about (crawled URLs are normalised).
    first, _ = split_once(data)
    asked = normalize_url(first.decode("utf-8", "replace"), _URLS[0])
    for agent in _AGENTS:
        for url in (*_URLS, asked) if asked else _URLS:
            assert rules.allows(url, agent) in (True, False)
        delay = rules.crawl_delay(agent)
        assert delay is None or delay >= 0, delay
