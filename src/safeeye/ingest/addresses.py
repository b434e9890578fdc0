"""Which URLs and network addresses the fetcher may reach (URL checks and SSRF protection).

A URL is checked in two steps: ``parse_target`` refuses what is not a plain http(s) URL, and
``AddressGuard.resolve`` resolves its host and refuses private, loopback, link-local, multicast,
reserved and unspecified addresses (an IPv6 address wrapping IPv4 is judged by the IPv4 it
wraps) unless the allow-list admits the address on that port. The fetcher connects only to the
addresses ``resolve`` returned (see ``pinning.py``), so a DNS answer cannot change between the
check and the connection.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from safeeye.errors import ConfigError, FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``socket.getaddrinfo``-compatible: ``(host, port) -> [(family, type, proto, name, sockaddr)]``.
Resolver = Callable[[str, int], Sequence[tuple[Any, ...]]]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_MAX_URL = 8192


@dataclass(frozen=True)
class Target:
    """A URL that passed the syntax checks: scheme, host (lowercase, IDNA), port, full URL."""

    url: str
    scheme: str
    host: str
    port: int

    @property
    def origin(self) -> str:
        """``scheme://host:port``, the unit robots.txt applies to."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_target(url: str) -> Target:
    """Check that ``url`` is an absolute http(s) URL with a sane host and no credentials.

    Raises ``FetchError(code="bad_url")`` with the reason otherwise. The fragment is dropped.
    """
    shown = url[:200]
    if not isinstance(url, str) or not url.strip():
        raise FetchError("empty URL", code="bad_url")
    if len(url) > _MAX_URL:
        raise FetchError(f"URL longer than {_MAX_URL} characters", code="bad_url")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url.strip()):
        raise FetchError(f"URL contains spaces or control characters: {shown!r}", code="bad_url")
    try:
        parsed = httpx.URL(url.strip())
        port = parsed.port
        raw_host = parsed.raw_host  # raises for a non-ASCII IPv6 zone: "http://[::%é]/"
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise FetchError(f"malformed URL {shown!r}: {exc}", code="bad_url") from exc
    scheme = parsed.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"only http and https URLs can be fetched, not {shown!r}", code="bad_url")
    if parsed.userinfo:
        raise FetchError("URLs with credentials (user:password@) are refused", code="bad_url")
    host = raw_host.decode("ascii").lower()
    if not host:
        raise FetchError(f"URL has no host: {shown!r}", code="bad_url")
    if not _valid_host(host):
        raise FetchError(f"URL has an invalid host name: {shown!r}", code="bad_url")
    if port is not None and not 0 < port < 65536:
        raise FetchError(f"URL has an invalid port: {shown!r}", code="bad_url")
    effective_port = port or (443 if scheme == "https" else 80)
    return Target(str(parsed.copy_with(fragment=None)), scheme, host, effective_port)


def _valid_host(host: str) -> bool:
    if ":" in host:  # an IPv6 literal (httpx strips the brackets)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253:
        return False
    return all(_LABEL.fullmatch(label) for label in name.split("."))


def normalise(ip: IPAddress) -> IPAddress:
    """The IPv4 address behind an IPv4-mapped or NAT64 IPv6 address; ``ip`` otherwise."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def wrapped_ipv4(ip: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries (none for a plain one).

    IPv4-mapped (``::ffff:0:0/96``) and IPv4-compatible (``::/96``) addresses, 6to4
    (``2002::/16``), Teredo (``2001::/32``: the server and the client, whose bits are inverted)
    and NAT64 with the well-known prefix (``64:ff9b::/96``) each lead to IPv4 addresses that a
    relay or the kernel may connect to.
    """
    if not isinstance(ip, ipaddress.IPv6Address):
        return ()
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip in _IPV4_COMPATIBLE or ip in _NAT64:
        return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo
    return ()


def is_public(ip: IPAddress) -> bool:
    """True for a globally routable unicast address.

    An address wrapping IPv4 (``wrapped_ipv4``) is public only if every IPv4 it wraps is. The
    local-use NAT64 prefix (``64:ff9b:1::/48``) never is: where its IPv4 sits depends on a
    prefix length only the local network knows, so it cannot be checked.
    """
    if isinstance(ip, ipaddress.IPv6Address) and ip in _LOCAL_NAT64:
        return False
    inner = wrapped_ipv4(ip)
    if inner:
        return all(_plain_public(v4) for v4 in inner)
    return _plain_public(ip)


def _plain_public(ip: IPAddress) -> bool:
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


@dataclass(frozen=True)
class _Entry:
    """One allow-list entry: a network or a host name, for one port or (``None``) any."""

    port: int | None
    network: IPNetwork | None = None
    host: str | None = None

    def admits_port(self, port: int | None) -> bool:
        return self.port is None or self.port == port


def parse_allow_entry(entry: str) -> _Entry:
    """One allow-list entry: ``host``, ``address``, ``network`` or any of them with ``:port``.

    IPv6 addresses and networks take the port after brackets (``[::1]:8080``); without one,
    every port is admitted. ``ConfigError`` for an entry that is none of these.
    """
    text = entry.strip().lower()
    try:
        return _Entry(None, network=ipaddress.ip_network(text.strip("[]"), strict=False))
    except ValueError:
        pass
    port: int | None = None
    body = text
    if text.startswith("["):
        body, _, rest = text[1:].partition("]")
        if rest:
            port = _port(rest, entry)
    elif text.count(":") == 1:
        body, _, rest = text.partition(":")
        port = _port(":" + rest, entry)
    try:
        return _Entry(port, network=ipaddress.ip_network(body, strict=False))
    except ValueError:
        pass
    name = body.rstrip(".")
    if not name or ":" in name or not _valid_host(name):
        raise ConfigError(f"allow-list entry {entry[:100]!r} is not a host, address or network")
    return _Entry(port, host=name)


def _port(text: str, entry: str) -> int:
    digits = text[1:] if text.startswith(":") else ""
    if not (digits.isascii() and digits.isdigit()) or not 0 < int(digits) < 65536:
        raise ConfigError(f"allow-list entry {entry[:100]!r} has an invalid port")
    return int(digits)


class AddressGuard:
    """Resolves hosts and refuses non-public addresses unless allow-listed.

    ``allowlist`` holds IP addresses or CIDR networks (``127.0.0.1``, ``10.0.0.0/8``, ``::1``)
    and host names, each optionally with a port (``127.0.0.1:8080``, ``[::1]:8080``,
    ``intranet.example:8443``); an entry without a port admits every port. A host name entry
    admits only the addresses that name resolved to the first time this guard checked it: a
    later, different answer is refused unless public.
    """

    def __init__(self, allowlist: Iterable[str] = (), resolver: Resolver | None = None) -> None:
        entries = [parse_allow_entry(e) for e in allowlist if e.strip()]
        self._networks = [e for e in entries if e.network is not None]
        self._hosts = [e for e in entries if e.host is not None]
        self._resolver = resolver or _getaddrinfo
        self._pinned: dict[str, frozenset[IPAddress]] = {}
        self._lock = threading.Lock()

    def allowed(self, host: str, ip: IPAddress, port: int | None = None) -> bool:
        """True when ``ip`` (reached through ``host``, on ``port``) may be connected to.

        ``port=None`` (unknown) matches only entries that admit every port.
        """
        if is_public(ip):
            return True
        plain = normalise(ip)
        for entry in self._networks:
            assert entry.network is not None
            if entry.admits_port(port) and (ip in entry.network or plain in entry.network):
                return True
        name = _name(host)
        pinned = self._pinned.get(name, frozenset())
        return any(e.host == name and e.admits_port(port) for e in self._hosts) and (
            ip in pinned or plain in pinned
        )

    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` to connect to, all checked; FetchError otherwise.

        Every address must pass (a name answering with one public and one private address is
        refused), so no later choice among them can reach a private one.
        """
        try:
            infos = self._resolver(host, port)
        except (OSError, UnicodeError, ValueError) as exc:
            raise FetchError(f"cannot resolve host {host}", code="dns") from exc
        found: list[IPAddress] = []
        for info in infos:
            try:
                ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            except (ValueError, IndexError) as exc:
                raise FetchError(f"{host} resolves to an unusable address", code="dns") from exc
            if ip not in found:
                found.append(ip)
        if not found:
            raise FetchError(f"cannot resolve host {host}", code="dns")
        self._pin(host, found)
        for ip in found:
            if not self.allowed(host, ip, port):
                raise FetchError(
                    f"{host} resolves to a private or local address ({ip}) that the allow-list "
                    f"does not admit on port {port}; refused",
                    code="blocked_address",
                )
        return [str(ip) for ip in found]

    def _pin(self, host: str, found: list[IPAddress]) -> None:
        """Remember the first answer for an allow-listed host name (later ones must match)."""
        name = _name(host)
        if name in self._pinned or not any(e.host == name for e in self._hosts):
            return
        with self._lock:
            self._pinned.setdefault(name, frozenset(found))


def _name(host: str) -> str:
    return host.lower().rstrip(".")


def _getaddrinfo(host: str, port: int) -> Sequence[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
