"""Politeness per host: at most N requests at once, and a minimum interval between requests.

The interval is kept in this process, or, given a ``Spacing`` (``SharedSpacing``: a row per host
in the database), by every process and machine together: N workers then fetch from one site no
more often than one would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from safeeye.errors import FetchError


class Spacing(Protocol):
    """Reserves when the next request to a host may start, for everyone who shares it."""

    def reserve(self, host: str, interval: float) -> float:
        """Seconds from now until this caller's request may start (0: at once)."""
        ...


#: Above this many hosts, idle ones are forgotten (a crawler meets millions of hosts).
_PRUNE_ABOVE = 4096


@dataclass
class _Host:
    slots: threading.BoundedSemaphore
    interval: float
    next_start: float = 0.0
    users: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class HostLimits:
    """Thread-safe gate in front of every request to a host.

    ``slot(host, deadline)`` waits for one of ``concurrency`` places and for the host's
    interval since the previous request began (requests are spaced by start time, in the order
    they asked). ``clock`` drives the spacing and may be a test clock; ``deadline`` is in
    ``time.monotonic`` seconds, and a wait that would pass it raises ``FetchError("timeout")``.
    """

    def __init__(
        self,
        interval: float,
        concurrency: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        shared: Spacing | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("per-host concurrency must be at least 1")
        self._interval = max(0.0, interval)
        self._concurrency = concurrency
        self._clock = clock
        self._sleep = sleep
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()
        self._shared = shared

    def interval(self, host: str) -> float:
        """The spacing in force for ``host`` (the default unless raised by Crawl-delay)."""
        with self._lock:
            state = self._hosts.get(host)
            return self._interval if state is None else state.interval

    def raise_interval(self, host: str, seconds: float) -> None:
        """Space requests to ``host`` by ``seconds``, or the default interval if larger.

        Callers apply a Crawl-delay before each request, so forgetting idle hosts loses nothing.
        """
        with self._lock:
            state = self._state(host)
            state.interval = max(self._interval, seconds)

    @contextmanager
    def slot(self, host: str, deadline: float) -> Iterator[None]:
        """Hold one of ``host``'s places for the duration of the block."""
        with self._lock:
            state = self._state(host)
            state.users += 1
        try:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not state.slots.acquire(timeout=remaining):
                raise FetchError(f"no free connection slot for {host} in time", code="timeout")
            try:
                with state.lock:
                    if self._shared is not None:
                        wait = self._shared.reserve(host, state.interval)
                    else:
                        now = self._clock()
                        start = max(now, state.next_start)
                        wait = start - now
                    if wait > deadline - time.monotonic():
                        raise FetchError(
                            f"the rate limit for {host} leaves no time to fetch", code="timeout"
                        )
                    if self._shared is None:
                        state.next_start = start + state.interval
                if wait > 0:
                    self._sleep(wait)
                yield
            finally:
                state.slots.release()
        finally:
            with self._lock:
                state.users -= 1

    def _state(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            if len(self._hosts) > _PRUNE_ABOVE:
                self._prune()
            state = _Host(threading.BoundedSemaphore(self._concurrency), self._interval)
            self._hosts[host] = state
        return state

    def _prune(self) -> None:
        """Forget hosts nobody waits on whose interval has passed (called under the lock)."""
        now = self._clock()
        for host in [h for h, s in self._hosts.items() if s.users == 0 and s.next_start <= now]:
            del self._hosts[host]
