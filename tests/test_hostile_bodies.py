"""Hostile bodies: encodings stacked, unknown, corrupt or bombs; server text in error messages."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import subprocess
import sys
import textwrap
import unicodedata
import zlib
from pathlib import Path

import pytest

from hostile_server import HostileServer, MakeFetcher, encoded, fails, static
from safeeye.ingest.decoding import CHUNK, BodyDecoder

PAGE = (
    b"<!DOCTYPE html><html><body>" + b"<p>a page worth compressing</p>" * 2000 + b"</body></html>"
)
#: How far the fetching process's peak memory may grow while refusing the bombs below.
MEMORY_CEILING_MB = 200
pytest_plugins = ["fetch_fixtures"]


def _text(size: int) -> bytes:
    """Text that compresses about four-fold, as pages do (a bomb's ratio is in the hundreds)."""
    words = [bytes(random.Random(i).choices(range(97, 123), k=1 + i % 9)) for i in range(100)]
    picker = random.Random(0)
    out = bytearray()
    while len(out) < size:
        out += picker.choice(words) + b" "
    return bytes(out[:size])


def _gzip_of_zeros(size: int, *, level: int = 1) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (16 * 1024**2)
    parts = [
        compressor.compress(block[: min(len(block), size - done)])
        for done in range(0, size, len(block))
    ]
    return b"".join([*parts, compressor.flush()])


@pytest.fixture(scope="module")
def stacked_bomb() -> bytes:
    """13 KB on the wire, ``gzip, gzip``: 4.6 MB after one decoding, 1 GiB after the second."""
    return gzip.compress(_gzip_of_zeros(1024**3), compresslevel=9)


# -- encodings that are decoded ---------------------------------------------------------------


def test_a_gzip_encoded_page_fetches_as_its_decoded_html(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.route("/page.html", encoded(gzip.compress(PAGE), "gzip", content_type="text/html"))
    with make_fetcher().fetch(server.url("/page.html"), want="page") as result:
        assert result.read_bytes() == PAGE and result.size == len(PAGE)
        assert result.sha256 == hashlib.sha256(PAGE).hexdigest()
        assert result.sniffed is not None and result.sniffed.format == "html"
        assert result.headers["content-encoding"] == "gzip"  # kept as evidence


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("deflate", zlib.compress(PAGE)),  # as the standard says: zlib-wrapped
        ("deflate", zlib.compress(PAGE)[2:-4]),  # as many servers send it: raw
        ("x-gzip", gzip.compress(PAGE)),
        ("identity", PAGE),
        ("GZip", gzip.compress(PAGE) + b"\n\n"),  # bytes after the stream are ignored
    ],
    ids=["deflate-zlib", "deflate-raw", "x-gzip", "identity", "gzip-trailing-bytes"],
)
def test_each_single_known_encoding_is_decoded(
    coding: str, body: bytes, server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.route("/p", encoded(body, coding, content_type="text/html"))
    with make_fetcher().fetch(server.url("/p"), want="page") as result:
        assert result.read_bytes() == PAGE


def test_robots_txt_in_gzip_is_read_and_cut_at_its_limit(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    rules = b"User-agent: *\nDisallow: /private/\n" + b"# padding\n" * 500 + b"Disallow: /late/\n"
    server.route("/robots.txt", encoded(gzip.compress(rules), "gzip", content_type="text/plain"))
    for path in ("/private/a", "/late/a"):
        server.add(path, b"x", content_type="text/plain")
    fetcher = make_fetcher(robots_max_bytes=1000)
    fails("robots", lambda: fetcher.fetch(server.url("/private/a")))
    fetcher.fetch(server.url("/late/a")).unlink()  # that rule lies past the first 1000 bytes
    assert server.hits("/private/a") == 0 and server.hits("/late/a") == 1


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", gzip.compress(b"\0" * 10**6)),
        ("deflate", zlib.compress(b"\0" * 10**6)),
        ("deflate", zlib.compress(b"\0" * 10**6)[2:-4]),
        (None, b"\0" * 10**6),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw", "identity"],
)
@pytest.mark.parametrize("step", [1, 3, 4096, 10**7])
def test_any_split_of_the_raw_bytes_decodes_alike_in_bounded_pieces(
    coding: str | None, body: bytes, step: int
) -> None:
    decoder = BodyDecoder(coding, "example.test")
    pieces = [p for i in range(0, len(body), step) for p in decoder.feed(body[i : i + step])]
    pieces += decoder.finish()
    assert b"".join(pieces) == b"\0" * 10**6
    assert max(len(p) for p in pieces) <= CHUNK


# -- encodings that are refused ---------------------------------------------------------------


@pytest.mark.parametrize(
    "codings",
    [("gzip, gzip",), ("gzip", "gzip"), ("deflate, gzip",), ("gzip, identity, deflate",)],
    ids=["one-header", "two-headers", "mixed", "identity-between"],
)
def test_stacked_encodings_are_refused_before_decoding(
    codings: tuple[str, ...], server: HostileServer, make_fetcher: MakeFetcher, tmp_path: Path
) -> None:
    server.route("/x", encoded(gzip.compress(gzip.compress(PAGE)), *codings))
    error = fails("bad_encoding", lambda: make_fetcher().fetch(server.url("/x")))
    assert "stacked" in str(error)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "x-bomb\u00e9"])
def test_unknown_encodings_are_refused(
    coding: str, server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.route("/x", encoded(b"\x00" * 100, coding))
    error = fails("bad_encoding", lambda: make_fetcher().fetch(server.url("/x")))
    assert "unsupported" in str(error)


def test_robots_txt_in_a_stacked_encoding_closes_the_site_for_now(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.route("/robots.txt", encoded(gzip.compress(gzip.compress(b"")), "gzip, gzip"))
    server.add("/a", b"a", content_type="text/plain")
    error = fails("robots", lambda: make_fetcher().fetch(server.url("/a")))
    assert "bad_encoding" in str(error) and server.hits("/a") == 0


@pytest.mark.parametrize(
    "body",
    [b"\x1f\x8b" + b"\xff" * 64, gzip.compress(PAGE)[:-100], gzip.compress(PAGE)[:-3]],
    ids=["corrupt", "cut-in-the-stream", "cut-in-the-trailer"],
)
def test_a_corrupt_or_cut_gzip_body_is_a_bad_encoding(
    body: bytes, server: HostileServer, make_fetcher: MakeFetcher, tmp_path: Path
) -> None:
    server.route("/x", encoded(body, "gzip"))
    fails("bad_encoding", lambda: make_fetcher().fetch(server.url("/x")))
    assert list(tmp_path.iterdir()) == []


def test_a_gzip_body_that_decodes_past_the_limit_is_too_large(
    server: HostileServer, make_fetcher: MakeFetcher, tmp_path: Path
) -> None:
    text = _text(3 * 1024**2)
    body = gzip.compress(text)
    assert len(body) < 1024**2 < len(text) < 100 * len(body)  # small on the wire, no bomb
    server.route("/x", encoded(body, "gzip"))
    error = fails("too_large", lambda: make_fetcher(max_bytes=1024**2).fetch(server.url("/x")))
    assert "passed the limit" in str(error)
    assert list(tmp_path.iterdir()) == []
    with make_fetcher(max_bytes=4 * 1024**2).fetch(server.url("/x")) as result:
        assert result.size == len(text) and result.sha256 == hashlib.sha256(text).hexdigest()


def test_a_decompression_bomb_is_refused_by_its_ratio_within_the_limit(
    server: HostileServer, make_fetcher: MakeFetcher, tmp_path: Path
) -> None:
    bomb = _gzip_of_zeros(32 * 1024**2, level=9)  # 32 KB -> 32 MB, far under the 512 MB limit
    server.route("/bomb", encoded(bomb, "gzip"))
    error = fails("too_large", lambda: make_fetcher().fetch(server.url("/bomb")))
    assert "decompression bomb" in str(error)
    assert list(tmp_path.iterdir()) == []


# Memory is read from /proc (VmRSS now, VmHWM the peak): getrusage's ru_maxrss would carry the
# pytest process's own peak into the child across fork and exec.
_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from safeeye.errors import FetchError
    from safeeye.ingest.fetcher import Fetcher, FetchPolicy

    def kilobytes(field):
        return int(Path("/proc/self/status").read_text().split(field + ":")[1].split()[0])

    temp_dir, *urls = sys.argv[1:]
    policy = FetchPolicy(
        allowlist=("127.0.0.1",), host_interval=0.0, retries=0, temp_dir=temp_dir,
        max_bytes=64 * 1024**2, max_decoded_ratio=1e9, total_timeout=60.0,
    )
    codes = []
    with Fetcher(policy) as fetcher:
        Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
        before = kilobytes("VmRSS")
        for url in urls:
            try:
                fetcher.fetch(url, obey_robots=False).unlink()
                codes.append("ok")
            except FetchError as exc:
                codes.append(exc.code)
        peak = kilobytes("VmHWM")
    print(json.dumps({"codes": codes, "growth_mb": (peak - before) / 1024}))
    """
)


def test_the_stacked_gzip_bomb_and_a_gzip_bomb_fail_cleanly_within_a_memory_ceiling(
    server: HostileServer, stacked_bomb: bytes, tmp_path: Path
) -> None:
    # The attack that drove one fetch to 8.6 GB: 13 KB declaring "gzip, gzip".
    server.route("/stacked", encoded(stacked_bomb, "gzip, gzip"))
    # One gzip layer of 1 GiB of zeros, against a 64 MiB limit with the ratio check off: the
    # decoded limit alone must stop it, one bounded piece at a time.
    server.route("/single", encoded(_gzip_of_zeros(1024**3, level=9), "gzip"))
    server.route("/page", encoded(gzip.compress(PAGE), "gzip", content_type="text/html"))
    urls = [server.url(p) for p in ("/stacked", "/single", "/page")]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path), *urls],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(done.stdout)
    print(f"peak RSS above the RSS before the bombs: {report['growth_mb']:.1f} MB")
    assert report["codes"] == ["bad_encoding", "too_large", "ok"]
    assert report["growth_mb"] < MEMORY_CEILING_MB
    assert list(tmp_path.iterdir()) == []


# -- what a server chooses, in error messages -------------------------------------------------


def test_server_chosen_text_reaches_error_messages_quoted_without_control_characters(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    # Header bytes are latin-1 on the wire: these are UTF-8 for a C1 CSI, ESC-like, and an RTL
    # override, which httpx decodes back into those characters.
    hostile = "image/jpeg [/] \xc2\x9b31m \xe2\x80\xae gpj.exe"
    server.route("/x", static(b"<html>not an image</html>", content_type=hostile))
    server.route("/y", encoded(b"x", "gzip\xc2\x9b[bold]"))
    fetcher = make_fetcher()
    messages = [
        str(fails("not_media", lambda: fetcher.fetch(server.url("/x"), want="media"))),
        str(fails("bad_encoding", lambda: fetcher.fetch(server.url("/y")))),
    ]
    for message in messages:
        assert not [ch for ch in message if unicodedata.category(ch) in ("Cc", "Cf")], message
    # Quoted literally: escaping Rich markup is the printing side's job.
    assert "[/]" in messages[0] and "[bold]" in messages[1]
