"""An httpx transport that connects only to checked addresses, within a per-fetch deadline.

Why a network backend rather than rewriting URLs to IP addresses: httpcore asks its network
backend to open every new TCP connection, with the host name from the URL. Ours resolves that
name once through ``AddressGuard`` (which refuses private addresses) and connects to the very
addresses it checked, so DNS cannot rebind between the check and the connection. The URL keeps
its host name, so the Host header, TLS SNI, certificate verification and connection pooling
all work on the real name with no special cases (rewriting to an IP would make the pool share a
TLS connection between two sites on one address). Pooled connections were all opened this way.

The same backend wraps every socket so that each read, write and TLS handshake waits no longer
than what is left of the calling thread's deadline: a server that trickles one byte at a time,
in the headers or the body, cannot hold a fetch past its total time limit.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

from safeeye.ingest.addresses import AddressGuard


class Deadlines:
    """The current fetch's deadline (``time.monotonic`` seconds), one per thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def until(self, deadline: float) -> Iterator[None]:
        """Apply ``deadline`` to the network I/O this thread does inside the block."""
        previous = getattr(self._local, "deadline", None)
        self._local.deadline = deadline if previous is None else min(previous, deadline)
        try:
            yield
        finally:
            self._local.deadline = previous

    def remaining(self) -> float | None:
        """Seconds left before the deadline (may be negative), None when there is none."""
        deadline = getattr(self._local, "deadline", None)
        return None if deadline is None else deadline - time.monotonic()

    def cap(self, timeout: float | None, error: type[Exception]) -> float | None:
        """``timeout`` shortened to the time left; ``error`` when none is left."""
        remaining = self.remaining()
        if remaining is None:
            return timeout
        if remaining <= 0:
            raise error("the total time limit of the fetch was reached")
        return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadlines: Deadlines) -> None:
        self._inner = inner
        self._deadlines = deadlines

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadlines.cap(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadlines.cap(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self._deadlines.cap(timeout, httpcore.ConnectTimeout)
        inner = self._inner.start_tls(ssl_context, server_hostname, timeout)
        return _DeadlineStream(inner, self._deadlines)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to addresses that ``guard`` resolved and allowed."""

    def __init__(self, guard: AddressGuard, deadlines: Deadlines) -> None:
        self._guard = guard
        self._deadlines = deadlines
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._guard.resolve(host, port)  # FetchError when refused
        last: Exception | None = None
        for address in addresses:
            capped = self._deadlines.cap(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(
                    address, port, capped, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            return _DeadlineStream(stream, self._deadlines)
        assert last is not None
        raise last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not fetched")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class PinnedTransport(httpx.BaseTransport):
    """An httpx transport over an httpcore pool whose connections go through ``PinnedBackend``.

    httpcore errors are not translated: the fetcher maps both httpx and httpcore errors.
    """

    def __init__(
        self,
        backend: PinnedBackend,
        ssl_context: ssl.SSLContext,
        *,
        max_connections: int = 64,
        max_keepalive: int = 16,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive,
            keepalive_expiry=keepalive_expiry,
            http1=True,
            http2=False,
            retries=0,
            network_backend=backend,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,  # type: ignore[arg-type]
            extensions=request.extensions,
        )
        response = self._pool.handle_request(core_request)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
