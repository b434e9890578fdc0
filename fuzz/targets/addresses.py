"""``ingest.addresses.parse_target``: the fetcher's URL gate. Anything but a plain http(s) URL
raises ``FetchError`` with code ``bad_url``; what passes has a sane host and port."""

from __future__ import annotations

from fuzz.targets._support import text
from safeeye.errors import FetchError
from safeeye.ingest.addresses import parse_target


def test_one_input(data: bytes) -> None:
    try:
        target = parse_target(text(data))
    except FetchError as exc:
        assert exc.code == "bad_url", exc.code
        return
    assert target.scheme in ("http", "https") and target.host, target
    assert 0 < target.port < 65536, target
    assert target.origin.startswith(f"{target.scheme}://"), target
