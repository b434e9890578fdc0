"""Which URLs and network addresses the fetcher may reach (URL checks and SSRF protection).

A URL is checked in two steps: ``parse_target`` refuses what is not a plain http(s) URL, and
``AddressGuard.resolve`` resolves its host and refuses private, loopback, link-local, multicast,
reserved and unspecified addresses unless the allow-list names the host or a network holding
the address. The fetcher connects only to the addresses ``resolve`` returned (see
``pinning.py``), so a DNS answer cannot change between the check and the connection.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from safeeye.errors import FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``socket.getaddrinfo``-compatible: ``(host, port) -> [(family, type, proto, name, sockaddr)]``.
Resolver = Callable[[str, int], Sequence[tuple[Any, ...]]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
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
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise FetchError(f"malformed URL {shown!r}: {exc}", code="bad_url") from exc
    scheme = parsed.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"only http and https URLs can be fetched, not {shown!r}", code="bad_url")
    if parsed.userinfo:
        raise FetchError("URLs with credentials (user:password@) are refused", code="bad_url")
    host = parsed.raw_host.decode("ascii").lower()
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


def is_public(ip: IPAddress) -> bool:
    """True for a globally routable unicast address (after ``normalise``)."""
    ip = normalise(ip)
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


class AddressGuard:
    """Resolves hosts and refuses non-public addresses unless allow-listed.

    ``allowlist`` holds host names (matched exactly, case-insensitively) and IP addresses or
    CIDR networks (``127.0.0.1``, ``10.0.0.0/8``, ``::1``).
    """

    def __init__(self, allowlist: Iterable[str] = (), resolver: Resolver | None = None) -> None:
        self._hosts: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowlist:
            entry = entry.strip().lower()
            if not entry:
                continue
            try:
                self._networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self._hosts.add(entry.rstrip("."))
        self._resolver = resolver or _getaddrinfo

    def allowed(self, host: str, ip: IPAddress) -> bool:
        """True when ``ip`` (reached through ``host``) may be connected to."""
        if is_public(ip) or host.lower().rstrip(".") in self._hosts:
            return True
        plain = normalise(ip)
        return any(ip in net or plain in net for net in self._networks)

    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` to connect to, all checked; FetchError otherwise.

        Every address must pass (a name answering with one public and one private address is
        refused), so no later choice among them can reach a private one.
        """
        try:
            infos = self._resolver(host, port)
        except (OSError, UnicodeError, ValueError) as exc:
            raise FetchError(f"cannot resolve host {host}", code="dns") from exc
        addresses: list[str] = []
        for info in infos:
            try:
                ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            except (ValueError, IndexError) as exc:
                raise FetchError(f"{host} resolves to an unusable address", code="dns") from exc
            if not self.allowed(host, ip):
                raise FetchError(
                    f"{host} resolves to a private or local address ({ip}); refused",
                    code="blocked_address",
                )
            if str(ip) not in addresses:
                addresses.append(str(ip))
        if not addresses:
            raise FetchError(f"cannot resolve host {host}", code="dns")
        return addresses


def _getaddrinfo(host: str, port: int) -> Sequence[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
