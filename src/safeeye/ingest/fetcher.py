"""The safe HTTP fetcher every discovery source uses: limits, redirects, retries, politeness.

``Fetcher.fetch`` GETs one URL into a temporary file and returns the evidence a Sighting needs
(final URL, status, headers, server address, time, SHA-256, what the bytes really are). It is
thread-safe: a crawler and a monitor may share one instance. What it guarantees:

- only http(s); no credentials in URLs; no private, loopback, link-local, multicast, reserved
  or unspecified address unless allow-listed, checked on every redirect hop and pinned for the
  connection (``addresses.py``, ``pinning.py``);
- a total time limit per fetch (redirects and retries included), a byte limit per response
  on the bytes received and on the bytes decoded (refused up front when Content-Length
  declares more); one Content-Encoding (gzip or deflate) undone under those limits, stacked or
  unknown ones refused (``decoding.py``); at most ``max_redirects`` redirects and no loops;
- retries with exponential backoff and jitter on connection errors, timeouts and 429/502/503/
  504 (Retry-After honoured up to a cap), never on other 4xx;
- per-host rate limit and concurrency (``hostlimits.py``), robots.txt (``robots.py``).

Every refusal is a ``FetchError`` whose ``code`` is one of: bad_url, dns, blocked_address,
robots, timeout, too_large, bad_encoding, redirect_loop, too_many_redirects, http_status
(``FetchStatusError``, with ``status``), connection, not_media, not_html. Text a server chose
(a Content-Type) appears in messages only quoted with ``repr``: no control characters.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import random
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpcore
import httpx

from safeeye import __version__
from safeeye.errors import FetchError
from safeeye.ingest.addresses import AddressGuard, Resolver, Target, parse_target
from safeeye.ingest.decoding import BodyDecoder, body_coding
from safeeye.ingest.hostlimits import HostLimits, Spacing
from safeeye.ingest.pinning import Deadlines, PinnedBackend, PinnedTransport
from safeeye.ingest.robots import RobotsCache, RobotsRules
from safeeye.media.sniff import SNIFF_BYTES, Sniffed, sniff

# httpx logs every request with its full URL at INFO level: a victim's media URLs do not go
# into service logs.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

USER_AGENT = f"safeeye/{__version__} (victim-support takedown scanner)"
#: Headers never kept in evidence (they may carry sessions or credentials).
SENSITIVE_HEADERS = frozenset(
    {"set-cookie", "set-cookie2", "cookie", "authorization", "proxy-authorization"}
)
RETRY_STATUSES = frozenset({429, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Decoded bytes allowed before ``max_decoded_ratio`` applies (small bodies vary widely).
_RATIO_FREE = 1024**2

Want = Literal["any", "page", "media"]
# Broken responses that a retry would not mend.
_UNUSABLE = (httpx.DecodingError, httpcore.LocalProtocolError, httpcore.UnsupportedProtocol)


@dataclass(frozen=True)
class FetchPolicy:
    """Limits and politeness for one ``Fetcher`` (times in seconds, sizes in bytes)."""

    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    #: Wall-clock bound on one ``fetch`` call: robots.txt, waits, redirects and retries.
    total_timeout: float = 120.0
    max_bytes: int = 512 * 1024**2
    max_redirects: int = 5
    #: Hosts, IP addresses or CIDR networks that may be fetched although not public.
    allowlist: tuple[str, ...] = ()
    #: Byte limit for ``want="page"`` when the call gives none.
    max_page_bytes: int = 20 * 1024**2
    retries: int = 2
    backoff_base: float = 0.5
    backoff_max: float = 10.0
    #: A longer Retry-After is not waited for: the fetch fails with it (``retry_after``).
    max_retry_after: float = 30.0
    #: Minimum time between the starts of two requests to one host.
    host_interval: float = 0.5
    host_concurrency: int = 2
    robots_ttl: float = 3600.0
    #: How long an unreachable robots.txt (5xx, timeout) keeps the origin closed.
    robots_error_ttl: float = 300.0
    robots_max_bytes: int = 512 * 1024
    #: Crawl-delay raises the host interval up to this.
    max_crawl_delay: float = 10.0
    user_agent: str = USER_AGENT
    #: CA bundle for https (None: the certifi bundle httpx ships with).
    ca_bundle: str | None = None
    #: Directory for the temporary body files (None: the system temp dir). ``fetch_policy``
    #: gives the process's private folder under the data dir (``safeeye.tempfiles``).
    temp_dir: str | None = None
    max_connections: int = 64
    #: A Content-Encoding that expands a body more than this many times is a bomb, once the
    #: decoded body passes 1 MiB (pages compress 5 to 10 times, media hardly at all).
    max_decoded_ratio: float = 100.0


class FetchStatusError(FetchError):
    """The server answered with an error status (``code="http_status"``)."""

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(message, code="http_status")
        self.status = status
        self.retry_after = retry_after


@dataclass
class FetchResult:
    """One fetched URL: the body in a temporary file (the caller deletes it) and its evidence.

    ``path`` is None when the server said 304 Not Modified to a conditional request.
    ``content_type`` is what the server declared; ``sniffed`` is what the bytes are.
    """

    url: str
    final_url: str
    status: int
    headers: dict[str, str]
    server_ip: str | None
    fetched_at: datetime
    redirects: list[str]
    not_modified: bool
    path: Path | None
    size: int
    sha256: str | None
    content_type: str | None
    sniffed: Sniffed | None
    etag: str | None
    last_modified: str | None
    elapsed: float

    def read_bytes(self) -> bytes:
        """The body (empty when not modified)."""
        return b"" if self.path is None else self.path.read_bytes()

    def unlink(self) -> None:
        """Delete the body file (safe to call twice)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> FetchResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlink()


@dataclass(frozen=True)
class _Spec:
    """What one fetch asks of every response it meets."""

    limit: int
    want: Want
    headers: dict[str, str]
    truncate: bool = False  # robots.txt: keep the first ``limit`` bytes instead of refusing

    @property
    def conditional(self) -> bool:
        return bool(self.headers)


@dataclass(frozen=True)
class _Redirect:
    location: str


@dataclass(frozen=True)
class _RetryStatus:
    status: int
    retry_after: float | None


@dataclass(frozen=True)
class _Response:
    """A final response, its body saved (or not, for 304)."""

    status: int
    headers: dict[str, str]
    server_ip: str | None
    fetched_at: datetime
    path: Path | None = None
    size: int = 0
    sha256: str | None = None
    sniffed: Sniffed | None = None


class _Retryable(Exception):
    def __init__(self, error: FetchError) -> None:
        super().__init__(str(error))
        self.error = error


class Fetcher:
    """Thread-safe safe fetcher; one per process or per policy. ``close()`` when done."""

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        resolver: Resolver | None = None,
        spacing: Spacing | None = None,
    ) -> None:
        """``spacing`` shares the per-host interval with other processes (``SharedSpacing``)."""
        self.policy = policy or FetchPolicy()
        self._clock = clock
        self._deadlines = Deadlines()
        self._guard = AddressGuard(self.policy.allowlist, resolver)
        ssl_context = (
            ssl.create_default_context(cafile=self.policy.ca_bundle)
            if self.policy.ca_bundle
            else httpx.create_ssl_context()
        )
        transport = PinnedTransport(
            PinnedBackend(self._guard, self._deadlines),
            ssl_context,
            max_connections=self.policy.max_connections,
        )
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(
                self.policy.read_timeout,
                connect=self.policy.connect_timeout,
                pool=self.policy.connect_timeout,
            ),
            follow_redirects=False,
            trust_env=False,  # an environment proxy would bypass the address pinning
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            headers={
                "User-Agent": self.policy.user_agent,
                "Accept": "*/*",
                "Accept-Encoding": "identity",
            },
        )
        self._hosts = HostLimits(
            self.policy.host_interval, self.policy.host_concurrency, clock=clock, shared=spacing
        )
        self._robots = RobotsCache(clock=clock)
        self._random = random.Random()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        obey_robots: bool = True,
        max_bytes: int | None = None,
        want: Want = "any",
    ) -> FetchResult:
        """GET ``url`` safely into a temporary file; ``FetchError`` with a stable code otherwise.

        ``etag`` / ``last_modified`` (from an earlier result) make the request conditional: a
        304 answer gives ``not_modified=True`` and no file. ``want="page"`` refuses a body that
        is not HTML/XML (``not_html``), ``want="media"`` one that is not an image or a video
        (``not_media``), judged from the bytes as soon as enough have arrived.
        """
        if want not in ("any", "page", "media"):
            raise ValueError(f"want must be 'any', 'page' or 'media', not {want!r}")
        started = time.monotonic()
        if max_bytes is None:
            max_bytes = self.policy.max_page_bytes if want == "page" else self.policy.max_bytes
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        spec = _Spec(max_bytes, want, headers)
        deadline = started + self.policy.total_timeout
        with self._deadlines.until(deadline):
            final, redirects, response = self._follow(url, spec, obey_robots, deadline)
        headers_kept = response.headers
        return FetchResult(
            url=url,
            final_url=final,
            status=response.status,
            headers=headers_kept,
            server_ip=response.server_ip,
            fetched_at=response.fetched_at,
            redirects=redirects,
            not_modified=response.status == 304,
            path=response.path,
            size=response.size,
            sha256=response.sha256,
            content_type=headers_kept.get("content-type"),
            sniffed=response.sniffed,
            etag=headers_kept.get("etag"),
            last_modified=headers_kept.get("last-modified"),
            elapsed=time.monotonic() - started,
        )

    # -- redirects ---------------------------------------------------------------------------

    def _follow(
        self, url: str, spec: _Spec, obey_robots: bool, deadline: float
    ) -> tuple[str, list[str], _Response]:
        target = parse_target(url)
        visited = {target.url}
        redirects: list[str] = []
        while True:
            if obey_robots:
                self._obey_robots(target, deadline)
            outcome = self._with_retries(target, spec, deadline)
            if isinstance(outcome, _Response):
                return target.url, redirects, outcome
            redirects.append(target.url)
            try:
                location = str(httpx.URL(target.url).join(outcome.location))
            except (httpx.InvalidURL, ValueError, TypeError) as exc:
                raise FetchError(
                    f"{target.host} redirects to a malformed URL", code="bad_url"
                ) from exc
            target = parse_target(location)
            if target.url in visited:
                raise FetchError(
                    f"redirect loop: {target.url[:200]} was already visited", code="redirect_loop"
                )
            if len(redirects) > self.policy.max_redirects:
                raise FetchError(
                    f"more than {self.policy.max_redirects} redirects", code="too_many_redirects"
                )
            visited.add(target.url)

    # -- retries -----------------------------------------------------------------------------

    def _with_retries(self, target: Target, spec: _Spec, deadline: float) -> _Response | _Redirect:
        attempt = 0
        while True:
            try:
                with self._hosts.slot(target.host, deadline):
                    outcome = self._attempt(target, spec, deadline)
            except _Retryable as retryable:
                error: FetchError = retryable.error
                delay = self._backoff(attempt)
            else:
                if not isinstance(outcome, _RetryStatus):
                    return outcome
                error = _status_error(target, outcome.status, outcome.retry_after)
                if outcome.retry_after is not None and (
                    outcome.retry_after > self.policy.max_retry_after
                ):
                    raise error
                delay = (
                    outcome.retry_after
                    if outcome.retry_after is not None
                    else self._backoff(attempt)
                )
            if attempt >= self.policy.retries or time.monotonic() + delay >= deadline:
                raise error
            time.sleep(delay)
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half to all of ``base * 2**attempt``, capped."""
        ceiling = min(self.policy.backoff_max, self.policy.backoff_base * 2**attempt)
        return ceiling * self._random.uniform(0.5, 1.0)

    # -- one request -------------------------------------------------------------------------

    def _attempt(
        self, target: Target, spec: _Spec, deadline: float
    ) -> _Response | _Redirect | _RetryStatus:
        request = self._client.build_request("GET", target.url, headers=spec.headers)
        try:
            response = self._client.send(request, stream=True)
            try:
                return self._handle(target, spec, response, deadline)
            finally:
                response.close()
        except FetchError:
            raise
        except (httpx.TimeoutException, httpcore.TimeoutException) as exc:
            if time.monotonic() >= deadline:
                raise FetchError(
                    f"fetching from {target.host} took longer than the total time limit "
                    f"({self.policy.total_timeout:g} s)",
                    code="timeout",
                ) from exc
            raise _Retryable(
                FetchError(f"{target.host} did not answer in time", code="timeout")
            ) from exc
        except _UNUSABLE as exc:
            raise FetchError(
                f"unusable response from {target.host}: {exc.__class__.__name__}",
                code="connection",
            ) from exc
        except (httpx.TransportError, httpcore.NetworkError, httpcore.ProtocolError) as exc:
            if certificate_failure(exc):
                raise FetchError(
                    f"the TLS certificate of {target.host} is not valid for it", code="connection"
                ) from exc
            raise _Retryable(
                FetchError(
                    f"connection to {target.host} failed ({exc.__class__.__name__})",
                    code="connection",
                )
            ) from exc

    def _handle(
        self, target: Target, spec: _Spec, response: httpx.Response, deadline: float
    ) -> _Response | _Redirect | _RetryStatus:
        status = response.status_code
        if status in REDIRECT_STATUSES:
            location = response.headers.get("location")
            if not location:
                raise FetchStatusError(
                    f"{target.host} answered {status} without a Location", status=status
                )
            return _Redirect(location)
        if status in RETRY_STATUSES:
            return _RetryStatus(status, retry_after_seconds(response.headers.get("retry-after")))
        fetched_at = datetime.now(UTC)
        headers = {
            k.lower(): v for k, v in response.headers.items() if k.lower() not in SENSITIVE_HEADERS
        }
        server_ip = _server_ip(response)
        if status == 304 and spec.conditional:
            return _Response(status, headers, server_ip, fetched_at)
        if not 200 <= status < 300:
            raise _status_error(target, status, None)
        declared = response.headers.get("content-length", "").strip()
        if not spec.truncate and _digits(declared) and int(declared) > spec.limit:
            raise FetchError(
                f"{target.host} declares {int(declared)} bytes, over the limit of {spec.limit}",
                code="too_large",
            )
        path, size, sha256, sniffed = self._save(target, spec, response, deadline)
        return _Response(status, headers, server_ip, fetched_at, path, size, sha256, sniffed)

    def _save(
        self, target: Target, spec: _Spec, response: httpx.Response, deadline: float
    ) -> tuple[Path, int, str, Sniffed]:
        """Stream the decoded body to a temporary file within the limits (removed on error)."""
        fd, name = tempfile.mkstemp(prefix="safeeye-fetch-", dir=self.policy.temp_dir)
        path = Path(name)
        digest = hashlib.sha256()
        head = bytearray()
        size = 0
        sniffed: Sniffed | None = None
        declared = response.headers.get("content-type")
        try:
            with open(fd, "wb") as out:
                for chunk in self._decoded(target, spec, response, deadline):
                    if size + len(chunk) > spec.limit:
                        if not spec.truncate:
                            raise FetchError(
                                f"the body from {target.host} passed the limit of "
                                f"{spec.limit} bytes",
                                code="too_large",
                            )
                        chunk = chunk[: spec.limit - size]
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if len(head) < SNIFF_BYTES:
                        head += chunk[: SNIFF_BYTES - len(head)]
                        if len(head) >= SNIFF_BYTES:
                            sniffed = _check_want(spec.want, bytes(head), declared)
                    if size >= spec.limit and spec.truncate:
                        break
            if sniffed is None:
                sniffed = _check_want(spec.want, bytes(head), declared)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path, size, digest.hexdigest(), sniffed

    def _decoded(
        self, target: Target, spec: _Spec, response: httpx.Response, deadline: float
    ) -> Iterator[bytes]:
        """The body's bytes with its Content-Encoding undone, in pieces of bounded size.

        The raw bytes count against ``spec.limit`` as the decoded ones do (in ``_save``), and a
        coding that expands more than ``max_decoded_ratio``-fold is refused as a bomb.
        """
        coding = body_coding(
            response.headers.get_list("content-encoding", split_commas=True), target.host
        )
        decoder = BodyDecoder(coding, target.host)
        raw_size = decoded = 0
        for raw in response.iter_raw():
            cut = raw_size + len(raw) > spec.limit
            if cut:
                if not spec.truncate:
                    raise FetchError(
                        f"the body from {target.host} passed the limit of {spec.limit} bytes",
                        code="too_large",
                    )
                raw = raw[: spec.limit - raw_size]
            raw_size += len(raw)
            for piece in decoder.feed(raw):
                decoded += len(piece)
                if (
                    coding
                    and decoded > _RATIO_FREE
                    and decoded > raw_size * self.policy.max_decoded_ratio
                ):
                    raise FetchError(
                        f"the {coding} body from {target.host} expands more than "
                        f"{self.policy.max_decoded_ratio:g}-fold; refused as a decompression bomb",
                        code="too_large",
                    )
                self._check_deadline(target, deadline)
                yield piece
            self._check_deadline(target, deadline)
            if cut:
                return  # truncated: the end of the stream is not expected
        yield from decoder.finish()

    def _check_deadline(self, target: Target, deadline: float) -> None:
        if time.monotonic() >= deadline:
            raise FetchError(
                f"fetching from {target.host} took longer than the total time "
                f"limit ({self.policy.total_timeout:g} s)",
                code="timeout",
            )

    # -- robots.txt --------------------------------------------------------------------------

    def _obey_robots(self, target: Target, deadline: float) -> None:
        rules = self._robots.rules(target.origin, lambda o: self._load_robots(o, deadline))
        agent = self.policy.user_agent
        delay = rules.crawl_delay(agent)
        if delay:
            self._hosts.raise_interval(target.host, min(delay, self.policy.max_crawl_delay))
        if rules.allows(target.url, agent):
            return
        if rules.verdict == "unavailable":
            raise FetchError(
                f"robots.txt of {target.origin} is unavailable ({rules.reason}); "
                "not fetching from it for now",
                code="robots",
            )
        raise FetchError(f"robots.txt of {target.origin} disallows this URL", code="robots")

    def _load_robots(self, origin: str, deadline: float) -> RobotsRules:
        """Fetch and judge ``origin``/robots.txt through the same safe path (RFC 9309)."""
        spec = _Spec(self.policy.robots_max_bytes, "any", {}, truncate=True)
        now = self._clock()
        unavailable_until = now + self.policy.robots_error_ttl
        try:
            _, _, response = self._follow(f"{origin}/robots.txt", spec, False, deadline)
        except FetchStatusError as exc:
            if 400 <= exc.status < 500 and exc.status != 429:
                return RobotsRules("allow_all", now + self.policy.robots_ttl)
            return RobotsRules("unavailable", unavailable_until, reason=f"HTTP {exc.status}")
        except FetchError as exc:
            if exc.code in ("timeout", "connection", "bad_encoding"):
                return RobotsRules("unavailable", unavailable_until, reason=exc.code)
            if exc.code in ("redirect_loop", "too_many_redirects"):
                return RobotsRules("allow_all", now + self.policy.robots_ttl)
            raise
        try:
            text = b"" if response.path is None else response.path.read_bytes()
        finally:
            if response.path is not None:
                response.path.unlink(missing_ok=True)
        return RobotsRules.parse(
            text.decode("utf-8", errors="replace"), now + self.policy.robots_ttl
        )


def _status_error(target: Target, status: int, retry_after: float | None) -> FetchStatusError:
    reason = httpx.codes.get_reason_phrase(status) or "unexpected status"
    message = f"{target.host} answered HTTP {status} {reason}"
    if retry_after is not None:
        message += f" (retry after {retry_after:g} s)"
    return FetchStatusError(message, status=status, retry_after=retry_after)


def _check_want(want: Want, head: bytes, declared: str | None) -> Sniffed:
    """What ``head`` is; ``not_html`` / ``not_media`` when it is not what was wanted."""
    sniffed = sniff(head)
    shown = f" (declared {declared[:80]!r})" if declared else ""
    if want == "media" and sniffed.kind not in ("image", "video"):
        raise FetchError(
            f"expected an image or a video but got {sniffed.description}{shown}",
            code="not_media",
        )
    if want == "page" and not _is_page(sniffed, head):
        raise FetchError(
            f"expected an HTML or XML page but got {sniffed.description}{shown}", code="not_html"
        )
    return sniffed


def _is_page(sniffed: Sniffed, head: bytes) -> bool:
    if sniffed.format in ("html", "xml"):
        return True
    # Text that opens with markup (a page starting with <div>, or behind a UTF-8 BOM).
    return sniffed.format == "text" and head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _digits(text: str) -> bool:
    """True for a non-empty run of ASCII digits (``str.isdigit`` also takes "²")."""
    return text.isascii() and text.isdigit()


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    if _digits(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _server_ip(response: httpx.Response) -> str | None:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    address = stream.get_extra_info("server_addr")
    return str(address[0]) if address else None


def certificate_failure(exc: BaseException) -> bool:
    """Whether a transport error is a certificate that does not verify."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
