"""A safe HTTP fetcher: time and byte limits, bounded redirects, no private addresses.

Discovery (sources, crawling, rate limits, robots.txt) builds on this; the scanner uses it
to fetch a URL given on the command line.
"""

from __future__ import annotations

import ipaddress
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from safeeye import __version__
from safeeye.errors import FetchError

USER_AGENT = f"safeeye/{__version__} (victim-support takedown scanner)"
SENSITIVE_HEADERS = {"set-cookie", "cookie", "authorization"}


@dataclass(frozen=True)
class FetchPolicy:
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 120.0
    max_bytes: int = 512 * 1024**2
    max_redirects: int = 5
    allowlist: tuple[str, ...] = ()


@dataclass
class Fetched:
    """A fetched response body on disk (the caller deletes ``path``) and how it was fetched."""

    url: str
    final_url: str
    status: int
    headers: dict[str, str]
    server_ip: str | None
    path: Path
    size: int
    redirects: list[str] = field(default_factory=list)


def _allowed(
    host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allowlist: tuple[str, ...]
) -> bool:
    for entry in allowlist:
        entry = entry.strip()
        if not entry:
            continue
        if entry == host:
            return True
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def check_destination(url: str, allowlist: tuple[str, ...] = ()) -> str:
    """Resolve ``url``'s host; FetchError unless every address is public or allow-listed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"not an http(s) URL: {url[:200]}", code="bad_url")
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, ValueError) as exc:
        raise FetchError(f"cannot resolve host {host}", code="dns") from exc
    addresses = []
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if not ip.is_global and not _allowed(host, ip, allowlist):
            raise FetchError(
                f"{host} resolves to a private or local address ({ip}); refused",
                code="blocked_address",
            )
        addresses.append(str(ip))
    return addresses[0]


def fetch_to_file(url: str, policy: FetchPolicy | None = None) -> Fetched:
    """GET ``url`` into a temporary file within the policy's limits; FetchError otherwise."""
    policy = policy or FetchPolicy()
    timeout = httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout)
    redirects: list[str] = []
    current = url
    with httpx.Client(
        timeout=timeout, follow_redirects=False, headers={"User-Agent": USER_AGENT}
    ) as client:
        for _ in range(policy.max_redirects + 1):
            ip = check_destination(current, policy.allowlist)
            try:
                with client.stream("GET", current) as response:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        redirects.append(current)
                        current = urljoin(current, location)
                        continue
                    return _save(url, current, ip, response, policy, redirects)
            except httpx.TimeoutException as exc:
                raise FetchError(f"timed out fetching {current[:200]}", code="timeout") from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"HTTP failure: {exc.__class__.__name__}", code="http") from exc
    raise FetchError(f"more than {policy.max_redirects} redirects", code="redirect_loop")


def _save(
    url: str,
    final: str,
    ip: str,
    response: httpx.Response,
    policy: FetchPolicy,
    redirects: list[str],
) -> Fetched:
    import time

    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > policy.max_bytes:
        raise FetchError(f"response declares {declared} bytes, over the limit", code="too_large")
    fd, name = tempfile.mkstemp(prefix="safeeye-fetch-")
    path = Path(name)
    size = 0
    deadline = time.monotonic() + policy.total_timeout
    try:
        with open(fd, "wb") as out:
            for chunk in response.iter_bytes(64 * 1024):
                size += len(chunk)
                if size > policy.max_bytes:
                    raise FetchError("response is larger than the byte limit", code="too_large")
                if time.monotonic() > deadline:
                    raise FetchError(
                        "response took longer than the total time limit", code="timeout"
                    )
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    headers = {k: v for k, v in response.headers.items() if k.lower() not in SENSITIVE_HEADERS}
    return Fetched(url, final, response.status_code, headers, ip, path, size, redirects)
