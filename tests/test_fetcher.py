"""The safe fetcher against a hostile local server: limits, redirects, SSRF, retries, robots."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import socket
import ssl
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hostile_server import (
    LOOPBACK_ONLY,
    HostileHandler,
    HostileServer,
    MakeFetcher,
    declared_length,
    endless,
    fails,
    hang_up,
    redirect,
    send,
    sequence,
    static,
    status,
    trickle,
)
from local_https import make_tls
from safeeye.ingest.addresses import is_public, parse_target
from safeeye.ingest.fetcher import USER_AGENT, FetchStatusError

pytest_plugins = ["fetch_fixtures"]


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


PNG = _png()
GARBAGE = bytes(range(256)) * 64  # binary, not text, not any known format


# -- a normal fetch ---------------------------------------------------------------------------


def test_image_fetch_keeps_the_evidence_a_sighting_needs(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.add(
        "/leak.png",
        PNG,
        content_type="image/png",
        headers={"ETag": '"v1"', "Set-Cookie": "session=secret", "Last-Modified": "x"},
    )
    fetcher = make_fetcher()
    before = datetime.now(UTC)

    with fetcher.fetch(server.url("/leak.png"), want="media") as result:
        assert result.status == 200 and not result.not_modified
        assert result.url == result.final_url == server.url("/leak.png")
        assert result.redirects == []
        assert result.server_ip == "127.0.0.1"
        assert before <= result.fetched_at <= datetime.now(UTC)
        assert result.fetched_at.tzinfo is not None
        assert result.size == len(PNG) and result.read_bytes() == PNG
        assert result.sha256 == hashlib.sha256(PNG).hexdigest()
        assert result.sniffed is not None and result.sniffed.format == "png"
        assert result.content_type == "image/png" and result.etag == '"v1"'
        assert result.last_modified == "x" and result.elapsed > 0
        assert "set-cookie" not in result.headers and "content-type" in result.headers
        path = result.path
        assert path is not None and path.exists()
    assert not path.exists()  # leaving the block deletes the body
    fetcher.fetch(server.url("/leak.png")).unlink()
    first, second = server.requests("/leak.png")
    assert first.headers["user-agent"] == USER_AGENT
    assert "cookie" not in second.headers  # cookies are neither kept nor sent back


def test_one_fetcher_serves_many_threads_at_once(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    bodies = {f"/{i}.png": PNG + bytes([i]) for i in range(12)}
    for path, body in bodies.items():
        server.add(path, body, content_type="image/png")
    fetcher = make_fetcher(host_concurrency=4)
    results: dict[str, str] = {}

    def work(path: str) -> None:
        with fetcher.fetch(server.url(path)) as result:
            results[path] = result.sha256 or ""

    threads = [threading.Thread(target=work, args=(p,)) for p in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == {p: hashlib.sha256(b).hexdigest() for p, b in bodies.items()}


# -- size and time limits ---------------------------------------------------------------------


def test_a_10_gb_content_length_is_refused_without_reading_the_body(
    server: HostileServer, make_fetcher: MakeFetcher, tmp_path: Path
) -> None:
    server.route("/huge", declared_length(10 * 1024**3))
    started = time.monotonic()
    error = fails("too_large", lambda: make_fetcher().fetch(server.url("/huge")))
    assert time.monotonic() - started < 4 and "10737418240" in str(error)  # body never read
    assert list(tmp_path.iterdir()) == []


def test_a_body_that_never_ends_stops_at_the_byte_limit(
    server: HostileServer, make_fetcher: MakeFetcher, tmp_path: Path
) -> None:
    server.route("/endless", endless())
    fetcher = make_fetcher(max_bytes=2 * 1024**2)
    fails("too_large", lambda: fetcher.fetch(server.url("/endless")))
    fails("too_large", lambda: fetcher.fetch(server.url("/endless"), max_bytes=100_000))
    assert list(tmp_path.iterdir()) == []  # partial bodies are deleted


def test_a_body_trickling_one_byte_each_half_second_stops_at_the_total_timeout(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.route("/trickle", trickle(every=0.5))
    fetcher = make_fetcher(total_timeout=1.5, read_timeout=5.0)
    started = time.monotonic()
    fails("timeout", lambda: fetcher.fetch(server.url("/trickle")))
    assert 1.3 <= time.monotonic() - started < 6


def test_headers_trickling_byte_by_byte_stop_at_the_total_timeout(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.route("/slow-headers", trickle(every=0.2, headers_too=True))
    fetcher = make_fetcher(total_timeout=1.0, read_timeout=5.0)
    started = time.monotonic()
    fails("timeout", lambda: fetcher.fetch(server.url("/slow-headers")))
    assert 0.8 <= time.monotonic() - started < 6


# -- redirects and addresses ------------------------------------------------------------------


def test_redirects_are_followed_and_recorded(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.route("/old", redirect("/older", 301))
    server.route("/older", redirect(server.url("/new.png"), 307))
    server.add("/new.png", PNG, content_type="image/png")
    with make_fetcher().fetch(server.url("/old")) as result:
        assert result.final_url == server.url("/new.png")
        assert result.redirects == [server.url("/old"), server.url("/older")]
        assert result.read_bytes() == PNG


def test_a_redirect_to_another_scheme_is_refused(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.route("/file", redirect("file:///etc/passwd"))
    server.route("/creds", redirect("http://admin:pw@127.0.0.1/"))
    fails("bad_url", lambda: make_fetcher().fetch(server.url("/file")))
    fails("bad_url", lambda: make_fetcher().fetch(server.url("/creds")))


def test_a_redirect_loop_is_detected(server: HostileServer, make_fetcher: MakeFetcher) -> None:
    server.route("/a", redirect("/b"))
    server.route("/b", redirect("/a"))
    server.route("/self", redirect("/self"))
    fetcher = make_fetcher()
    fails("redirect_loop", lambda: fetcher.fetch(server.url("/a")))
    fails("redirect_loop", lambda: fetcher.fetch(server.url("/self")))
    assert server.hits("/a") == 1 and server.hits("/b") == 1


def test_too_many_redirects_are_refused(server: HostileServer, make_fetcher: MakeFetcher) -> None:
    for i in range(10):
        server.route(f"/r{i}", redirect(f"/r{i + 1}"))
    fails("too_many_redirects", lambda: make_fetcher(max_redirects=3).fetch(server.url("/r0")))
    assert server.hits("/r3") == 1 and server.hits("/r4") == 0


def test_a_redirect_from_an_allowed_host_to_a_private_address_is_refused(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    # Linux routes all of 127/8 to the loopback device: 127.0.0.2 is private and not allowed.
    with HostileServer(host="127.0.0.2") as internal:
        internal.add("/admin", b"secret", content_type="text/plain")
        server.route("/go", redirect(internal.url("/admin")))
        fetcher = make_fetcher(allowlist=LOOPBACK_ONLY)
        error = fails("blocked_address", lambda: fetcher.fetch(server.url("/go")))
        assert "127.0.0.2" in str(error)
        assert internal.hits("/admin") == 0
        # Allowing it makes the same redirect work: the refusal was the address check.
        allowed = make_fetcher(allowlist=(*LOOPBACK_ONLY, "127.0.0.2"))
        with allowed.fetch(server.url("/go")) as result:
            assert result.read_bytes() == b"secret" and result.server_ip == "127.0.0.2"


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",  # decimal
        "0x7f.1",  # hex, short form
        "017700000001",  # octal
        "127.1",
        "0",  # 0.0.0.0
        "[::1]",
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
        "[::ffff:7f00:1]",
        "localhost",
    ],
)
def test_private_addresses_in_odd_notations_are_refused_without_an_allow_list(
    host: str, server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.add("/x", b"secret", content_type="text/plain")
    fetcher = make_fetcher(allowlist=())
    fails("blocked_address", lambda: fetcher.fetch(f"http://{host}:{server.port}/x"))
    assert server.hits("/x") == 0


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",  # multicast, which ipaddress calls global
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    ],
)
def test_non_public_addresses_are_recognised(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


def test_public_addresses_are_recognised() -> None:
    assert all(is_public(ipaddress.ip_address(a)) for a in ("8.8.8.8", "2606:4700::1111"))


def _resolver_to(*addresses: str, calls: list[str] | None = None) -> Any:
    def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        if calls is not None:
            calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve


def test_the_connection_is_pinned_to_the_checked_address(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.add("/p.png", PNG, content_type="image/png")
    calls: list[str] = []
    fetcher = make_fetcher(resolver=_resolver_to("127.0.0.1", calls=calls))
    with fetcher.fetch(f"http://pinned.test:{server.port}/p.png", obey_robots=False) as result:
        assert result.server_ip == "127.0.0.1" and result.read_bytes() == PNG
    # One resolution, used for both the check and the connection; the name stays in Host.
    assert calls == ["pinned.test"]
    assert server.requests("/p.png")[0].headers["host"] == f"pinned.test:{server.port}"


def _tls_for(name: str, directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA (its PEM file) and a server context with a certificate for ``name``."""
    tls = make_tls(directory, names=(name,), ips=())
    return tls.ca_file, tls.server_context()


def test_https_is_pinned_too_with_sni_and_certificate_checked_against_the_name(
    make_fetcher: MakeFetcher, tmp_path: Path
) -> None:
    ca_file, context = _tls_for("pinned.test", tmp_path)
    with HostileServer(tls=context) as secure:
        secure.add("/p.png", PNG, content_type="image/png")
        fetcher = make_fetcher(
            resolver=_resolver_to("127.0.0.1"), ca_bundle=str(ca_file), temp_dir=None
        )
        url = f"https://pinned.test:{secure.port}/p.png"
        with fetcher.fetch(url, obey_robots=False) as result:
            assert result.read_bytes() == PNG and result.server_ip == "127.0.0.1"
        # Same address, another name: the certificate does not cover it.
        impostor = f"https://impostor.test:{secure.port}/p.png"
        error = fails("connection", lambda: fetcher.fetch(impostor, obey_robots=False))
        assert "certificate" in str(error) and secure.hits("/p.png") == 1


def test_a_name_with_any_private_address_is_refused_before_connecting(
    make_fetcher: MakeFetcher,
) -> None:
    fetcher = make_fetcher(resolver=_resolver_to("8.8.8.8", "10.0.0.1"), allowlist=())
    fails("blocked_address", lambda: fetcher.fetch("http://mixed.test/x.jpg"))


def test_an_unknown_host_is_a_dns_error(make_fetcher: MakeFetcher) -> None:
    def fail(host: str, port: int) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    fails("dns", lambda: make_fetcher(resolver=fail).fetch("http://nowhere.test/x"))


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://",
        "ftp://127.0.0.1/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "/relative/path.jpg",
        "https://exa mple.com/x.jpg",
        "http://127.0.0.1:99999/",
        "http://user:password@127.0.0.1/",
        "http://exa\nmple.com/",
        "http://bad_host!.com/",
    ],
)
def test_malformed_urls_are_bad_url(url: str, make_fetcher: MakeFetcher) -> None:
    fails("bad_url", lambda: make_fetcher().fetch(url))


def test_a_target_keeps_scheme_host_and_port() -> None:
    target = parse_target("HTTPS://Example.COM./a?b=1#frag")
    assert (target.scheme, target.host, target.port) == ("https", "example.com.", 443)
    assert target.url == "https://example.com./a?b=1" and target.origin.endswith(":443")


# -- what the body really is ------------------------------------------------------------------


def test_an_image_served_as_html_is_still_sniffed_as_an_image(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.add("/page.html", PNG, content_type="text/html")
    with make_fetcher().fetch(server.url("/page.html"), want="media") as result:
        assert result.content_type == "text/html"
        assert result.sniffed is not None and result.sniffed.kind == "image"


def test_binary_garbage_served_as_html_is_not_a_page(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.add("/index.html", GARBAGE, content_type="text/html; charset=utf-8")
    server.route("/endless.html", endless(GARBAGE, content_type="text/html"))
    fetcher = make_fetcher()
    error = fails("not_html", lambda: fetcher.fetch(server.url("/index.html"), want="page"))
    assert "text/html" in str(error)
    # Judged from the first bytes: an endless body is refused long before the byte limit.
    fails("not_html", lambda: fetcher.fetch(server.url("/endless.html"), want="page"))


def test_pages_are_recognised_and_html_is_not_media(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.add("/p", b"\xef\xbb\xbf<div>hello</div>", content_type="text/html")
    server.add("/q", b"<!DOCTYPE html><html><body>x</body></html>", content_type="image/jpeg")
    fetcher = make_fetcher()
    with fetcher.fetch(server.url("/p"), want="page") as page:
        assert page.read_bytes().endswith(b"</div>")
    fails("not_media", lambda: fetcher.fetch(server.url("/q"), want="media"))


# -- statuses and retries ---------------------------------------------------------------------


@pytest.mark.parametrize("code", [404, 410, 500, 403])
def test_error_statuses_fail_with_the_status_and_are_not_retried(
    code: int, server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.route("/gone", status(code))
    error = fails("http_status", lambda: make_fetcher(retries=3).fetch(server.url("/gone")))
    assert isinstance(error, FetchStatusError) and error.status == code
    assert str(code) in str(error) and server.hits("/gone") == 1


def test_503_with_retry_after_is_retried_once_after_waiting(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.route(
        "/busy",
        sequence(status(503, headers={"Retry-After": "1"}), static(PNG, content_type="image/png")),
    )
    started = time.monotonic()
    with make_fetcher(retries=2).fetch(server.url("/busy")) as result:
        assert result.read_bytes() == PNG
    assert server.hits("/busy") == 2
    arrivals = [r.at for r in server.requests("/busy")]
    assert arrivals[1] - arrivals[0] >= 0.9 and time.monotonic() - started < 5


def test_a_retry_after_beyond_the_cap_is_not_waited_for(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.route("/later", status(429, headers={"Retry-After": "3600"}))
    started = time.monotonic()
    error = fails("http_status", lambda: make_fetcher(retries=3).fetch(server.url("/later")))
    assert isinstance(error, FetchStatusError) and error.retry_after == 3600
    assert server.hits("/later") == 1 and time.monotonic() - started < 2


def test_502_is_retried_with_backoff_until_the_retries_run_out(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.route("/down", status(502))
    error = fails("http_status", lambda: make_fetcher(retries=2).fetch(server.url("/down")))
    assert isinstance(error, FetchStatusError) and error.status == 502
    assert server.hits("/down") == 3


def test_a_dropped_connection_is_retried(server: HostileServer, make_fetcher: MakeFetcher) -> None:
    server.route("/flaky", sequence(hang_up(), static(PNG, content_type="image/png")))
    with make_fetcher(retries=1).fetch(server.url("/flaky")) as result:
        assert result.read_bytes() == PNG
    assert server.hits("/flaky") == 2
    server.route("/dead", hang_up())
    fails("connection", lambda: make_fetcher(retries=0).fetch(server.url("/dead")))


def test_an_etag_makes_a_conditional_request_and_304_means_not_modified(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    def handle(h: HostileHandler) -> None:
        if h.headers.get("If-None-Match") == '"v1"':
            send(h, 304, headers={"ETag": '"v1"'})
        else:
            send(h, 200, PNG, content_type="image/png", headers={"ETag": '"v1"'})

    server.route("/img", handle)
    fetcher = make_fetcher()
    with fetcher.fetch(server.url("/img")) as first:
        assert first.etag == '"v1"' and not first.not_modified
    again = fetcher.fetch(server.url("/img"), etag=first.etag, last_modified="Mon, 01 Jan 2024")
    assert again.not_modified and again.status == 304 and again.path is None
    assert again.read_bytes() == b"" and again.sha256 is None
    sent = server.requests("/img")[1].headers
    assert sent["if-none-match"] == '"v1"' and sent["if-modified-since"] == "Mon, 01 Jan 2024"


# -- politeness: rate limits and robots.txt ---------------------------------------------------


def test_requests_to_one_host_are_spaced_by_the_host_interval(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.add("/x", b"x", content_type="text/plain")
    fetcher = make_fetcher(host_interval=0.3)
    for _ in range(2):
        fetcher.fetch(server.url("/x")).unlink()
    first, second = (r.at for r in server.requests("/x"))
    assert 0.25 <= second - first < 2.0


def test_concurrency_per_host_is_bounded(server: HostileServer, make_fetcher: MakeFetcher) -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def slow(h: HostileHandler) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.2)
        with lock:
            active -= 1
        send(h, 200, b"ok", content_type="text/plain")

    server.route("/slow", slow)
    fetcher = make_fetcher(host_concurrency=1)
    threads = [
        threading.Thread(target=lambda: fetcher.fetch(server.url("/slow")).unlink())
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert server.hits("/slow") == 3 and peak == 1


def test_robots_txt_is_obeyed_cached_and_can_be_overridden(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.add("/robots.txt", b"User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    server.add("/private/a.png", PNG, content_type="image/png")
    server.add("/public/a.png", PNG, content_type="image/png")
    fetcher = make_fetcher()
    error = fails("robots", lambda: fetcher.fetch(server.url("/private/a.png")))
    assert "disallows" in str(error) and server.hits("/private/a.png") == 0
    fetcher.fetch(server.url("/public/a.png")).unlink()
    fetcher.fetch(server.url("/private/a.png"), obey_robots=False).unlink()
    assert server.hits("/robots.txt") == 1 and server.hits("/private/a.png") == 1


def test_robots_txt_naming_safeeye_applies_to_it(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.add(
        "/robots.txt",
        b"User-agent: safeeye\nDisallow: /\n\nUser-agent: *\nAllow: /\n",
        content_type="text/plain",
    )
    server.add("/a", b"a", content_type="text/plain")
    fails("robots", lambda: make_fetcher().fetch(server.url("/a")))


def test_missing_robots_txt_allows_all_and_a_failing_one_disallows_for_now(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.add("/a", b"a", content_type="text/plain")
    make_fetcher().fetch(server.url("/a")).unlink()  # robots.txt answers 404
    assert server.hits("/robots.txt") == 1

    with HostileServer() as failing:
        failing.route("/robots.txt", status(500))
        failing.add("/a", b"a", content_type="text/plain")
        error = fails("robots", lambda: make_fetcher().fetch(failing.url("/a")))
        assert "unavailable" in str(error) and failing.hits("/a") == 0


def test_robots_txt_is_fetched_again_after_its_ttl(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.add("/a", b"a", content_type="text/plain")
    now = [1000.0]
    fetcher = make_fetcher(clock=lambda: now[0], robots_ttl=60.0)
    fetcher.fetch(server.url("/a")).unlink()
    fetcher.fetch(server.url("/a")).unlink()
    assert server.hits("/robots.txt") == 1
    now[0] += 61
    fetcher.fetch(server.url("/a")).unlink()
    assert server.hits("/robots.txt") == 2


def test_crawl_delay_raises_the_host_interval_up_to_the_cap(
    server: HostileServer, make_fetcher: MakeFetcher
) -> None:
    server.add("/robots.txt", b"User-agent: *\nCrawl-delay: 30\n", content_type="text/plain")
    server.add("/a", b"a", content_type="text/plain")
    fetcher = make_fetcher(max_crawl_delay=0.3)
    for _ in range(2):
        fetcher.fetch(server.url("/a")).unlink()
    first, second = (r.at for r in server.requests("/a"))
    assert 0.25 <= second - first < 2.0
