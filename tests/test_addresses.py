"""Which addresses the fetcher may reach: IPv6 forms wrapping IPv4, and allow-list entries."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hostile_server import HostileServer
from safeeye.errors import ConfigError, FetchError
from safeeye.ingest.addresses import AddressGuard, is_public, parse_allow_entry, wrapped_ipv4
from safeeye.ingest.fetcher import Fetcher, FetchPolicy


def _ip(text: str) -> Any:
    return ipaddress.ip_address(text)


# -- IPv6 addresses that wrap IPv4 ------------------------------------------------------------

# (form, wrapping a private or local IPv4, wrapping only public IPv4)
WRAPPED = [
    ("IPv4-mapped", "::ffff:10.0.0.1", "::ffff:8.8.8.8"),
    ("IPv4-compatible", "::127.0.0.1", "::8.8.8.8"),
    ("6to4", "2002:a00:1::1", "2002:808:808::1"),
    ("6to4 of loopback", "2002:7f00:1:1::abcd", "2002:101:101:1::abcd"),
    ("Teredo, private client", "2001:0:808:808::f5ff:fffe", "2001:0:808:808::fefe:fefe"),
    ("Teredo, private server", "2001:0:a9fe:a9fe::fefe:fefe", "2001:0:101:101::f7f7:f7f7"),
    ("NAT64", "64:ff9b::c0a8:101", "64:ff9b::808:808"),
]


@pytest.mark.parametrize(("form", "private", "public"), WRAPPED, ids=[w[0] for w in WRAPPED])
def test_an_ipv6_address_is_public_only_if_every_ipv4_it_wraps_is(
    form: str, private: str, public: str
) -> None:
    assert wrapped_ipv4(_ip(private)) and wrapped_ipv4(_ip(public))
    assert not is_public(_ip(private)), form
    assert is_public(_ip(public)), form


def test_teredo_yields_the_server_and_the_inverted_client() -> None:
    assert wrapped_ipv4(_ip("2001:0:808:808::f5ff:fffe")) == (_ip("8.8.8.8"), _ip("10.0.0.1"))


def test_the_local_use_nat64_prefix_is_never_public() -> None:
    # Where its IPv4 sits depends on the local prefix length, so none can be trusted.
    assert not is_public(_ip("64:ff9b:1::a00:1"))
    assert not is_public(_ip("64:ff9b:1::808:808"))


def test_plain_addresses_are_unchanged_by_the_unwrapping() -> None:
    assert wrapped_ipv4(_ip("2606:4700::1111")) == () and is_public(_ip("2606:4700::1111"))
    assert wrapped_ipv4(_ip("8.8.8.8")) == () and is_public(_ip("8.8.8.8"))
    assert not is_public(_ip("::1")) and not is_public(_ip("::"))


def test_a_6to4_name_wrapping_a_private_address_is_refused_before_connecting() -> None:
    guard = AddressGuard((), _resolver({"sneaky.test": ["2002:a9fe:a9fe::1"]}))
    with pytest.raises(FetchError) as caught:
        guard.resolve("sneaky.test", 80)
    assert caught.value.code == "blocked_address"


# -- allow-list entries -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "port", "kind"),
    [
        ("127.0.0.1", None, "network"),
        ("127.0.0.1:8080", 8080, "network"),
        ("10.0.0.0/8", None, "network"),
        ("10.0.0.0/8:443", 443, "network"),
        ("::1", None, "network"),
        ("[::1]", None, "network"),
        ("[::1]:8080", 8080, "network"),
        ("fc00::/7", None, "network"),
        ("Intranet.Example.", None, "host"),
        ("intranet.example:8443", 8443, "host"),
    ],
)
def test_allow_list_entries_name_an_address_network_or_host_with_an_optional_port(
    entry: str, port: int | None, kind: str
) -> None:
    parsed = parse_allow_entry(entry)
    assert parsed.port == port
    assert (parsed.network is not None) == (kind == "network")
    assert parsed.host == ("intranet.example" if kind == "host" else None)


@pytest.mark.parametrize(
    "entry", ["127.0.0.1:0", "127.0.0.1:99999", "host:http", "[::1]x", "bad_host!", "a:b:c"]
)
def test_a_malformed_allow_list_entry_is_a_config_error(entry: str) -> None:
    with pytest.raises(ConfigError):
        AddressGuard((entry,))


def test_an_entry_with_a_port_admits_that_port_only() -> None:
    guard = AddressGuard(("127.0.0.1:8080", "[::1]:8443", "10.0.0.0/8"))
    assert guard.allowed("x", _ip("127.0.0.1"), 8080)
    assert not guard.allowed("x", _ip("127.0.0.1"), 8081)
    assert not guard.allowed("x", _ip("127.0.0.1"))  # port unknown: only any-port entries
    assert guard.allowed("x", _ip("::1"), 8443) and not guard.allowed("x", _ip("::1"), 80)
    assert guard.allowed("x", _ip("10.9.9.9"), 1) and guard.allowed("x", _ip("10.9.9.9"))
    assert guard.allowed("x", _ip("::ffff:10.9.9.9"), 22)
    assert not guard.allowed("x", _ip("192.168.0.9"), 8080)


def _resolver(answers: dict[str, list[str]], calls: list[str] | None = None) -> Any:
    """A resolver whose answers a test may change between calls."""

    def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        if calls is not None:
            calls.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    return resolve


def test_a_host_name_entry_admits_only_what_the_name_first_resolved_to() -> None:
    answers = {"intranet.example": ["10.0.0.5"], "other.example": ["10.0.0.5"]}
    guard = AddressGuard(("intranet.example",), _resolver(answers))
    assert guard.resolve("intranet.example", 80) == ["10.0.0.5"]
    assert guard.allowed("intranet.example", _ip("10.0.0.5"), 443)
    # The name now answers with another private address (a rebinding, or a changed record).
    answers["intranet.example"] = ["10.0.0.6"]
    with pytest.raises(FetchError) as caught:
        guard.resolve("intranet.example", 80)
    assert caught.value.code == "blocked_address" and "10.0.0.6" in str(caught.value)
    assert not guard.allowed("intranet.example", _ip("10.0.0.6"), 80)
    # A public answer is fine, as for any name; the entry admits nothing for other names.
    answers["intranet.example"] = ["8.8.8.8"]
    assert guard.resolve("intranet.example", 80) == ["8.8.8.8"]
    with pytest.raises(FetchError):
        guard.resolve("other.example", 80)


def test_a_host_name_entry_with_a_port_admits_that_port_only() -> None:
    guard = AddressGuard(("intranet.example:8443",), _resolver({"intranet.example": ["10.0.0.5"]}))
    assert guard.resolve("intranet.example", 8443) == ["10.0.0.5"]
    with pytest.raises(FetchError) as caught:
        guard.resolve("intranet.example", 443)
    assert caught.value.code == "blocked_address" and "443" in str(caught.value)


def test_an_unresolvable_allow_listed_name_is_remembered_only_once_it_answers() -> None:
    answers: dict[str, list[str]] = {}
    guard = AddressGuard(("late.example",), _resolver(answers))
    with pytest.raises(FetchError) as caught:
        guard.resolve("late.example", 80)
    assert caught.value.code == "dns"
    answers["late.example"] = ["192.168.1.2"]
    assert guard.resolve("late.example", 80) == ["192.168.1.2"]
    answers["late.example"] = ["192.168.1.3"]
    with pytest.raises(FetchError):
        guard.resolve("late.example", 80)


# -- through the fetcher ----------------------------------------------------------------------


@pytest.fixture
def two_servers() -> Iterator[tuple[HostileServer, HostileServer]]:
    with HostileServer() as first, HostileServer() as second:
        for server in (first, second):
            server.add("/x", b"hello", content_type="text/plain")
        yield first, second


def _fetch(allowlist: tuple[str, ...], url: str, tmp_path: Path, resolver: Any = None) -> bytes:
    policy = FetchPolicy(allowlist=allowlist, host_interval=0.0, retries=0, temp_dir=str(tmp_path))
    with Fetcher(policy, resolver=resolver) as fetcher, fetcher.fetch(url) as result:
        return result.read_bytes()


def test_the_fetcher_reaches_an_allow_listed_address_on_the_named_port_only(
    two_servers: tuple[HostileServer, HostileServer], tmp_path: Path
) -> None:
    first, second = two_servers
    allowlist = (f"127.0.0.1:{first.port}",)
    assert _fetch(allowlist, first.url("/x"), tmp_path) == b"hello"
    with pytest.raises(FetchError) as caught:
        _fetch(allowlist, second.url("/x"), tmp_path)
    assert caught.value.code == "blocked_address" and second.hits("/x") == 0
    # An address without a port still means "that address, any port" (SAFEEYE_FETCH_ALLOWLIST).
    assert _fetch(("127.0.0.1",), second.url("/x"), tmp_path) == b"hello"


def test_the_fetcher_reaches_an_allow_listed_name_at_its_first_address(
    two_servers: tuple[HostileServer, HostileServer], tmp_path: Path
) -> None:
    first, _ = two_servers
    answers = {"intranet.test": ["127.0.0.1"]}
    url = f"http://intranet.test:{first.port}/x"
    policy = FetchPolicy(allowlist=("intranet.test",), host_interval=0.0, retries=0)
    with Fetcher(policy, resolver=_resolver(answers)) as fetcher:
        with fetcher.fetch(url) as result:
            assert result.read_bytes() == b"hello"
        answers["intranet.test"] = ["127.0.0.2"]  # rebinding to another local address
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(url.replace("/x", "/y"))
        assert caught.value.code == "blocked_address"
