"""robots.txt rules per origin, fetched once per TTL and shared by every thread.

Outcomes follow RFC 9309: a robots.txt that loads is obeyed; a 4xx (404 above all) means no
rules, so everything is allowed; a 5xx, a timeout or a broken connection means the site cannot
say, so everything is disallowed for now (cached for a shorter time, then asked again).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote
from urllib.robotparser import RobotFileParser

Verdict = Literal["rules", "allow_all", "unavailable"]

_RATE_LINE = re.compile(r"\s*(crawl-delay|request-rate)\s*:([^#]*)", re.IGNORECASE)
# The values the standard library's parser can convert: ASCII digits, not too many of them.
_SANE_RATE = {
    "crawl-delay": re.compile(r"[0-9]{1,9}"),
    "request-rate": re.compile(r"[0-9]{1,9}\s*/\s*[0-9]{1,9}"),
}


@dataclass(frozen=True)
class RobotsRules:
    """What one origin's robots.txt says, and until when (``clock`` seconds) to believe it."""

    verdict: Verdict
    expires: float
    parser: RobotFileParser | None = None
    reason: str = ""

    @classmethod
    def parse(cls, text: str, expires: float) -> RobotsRules:
        """Rules from the text of a robots.txt."""
        parser = RobotFileParser()
        parser.parse(_parsable_lines(text))
        return cls("rules", expires, parser)

    def allows(self, url: str, agent: str) -> bool:
        """True when ``agent`` may fetch ``url`` under these rules."""
        if self.verdict == "allow_all":
            return True
        if self.verdict == "unavailable" or self.parser is None:
            return False
        return self.parser.can_fetch(agent, url)

    def crawl_delay(self, agent: str) -> float | None:
        """The Crawl-delay (seconds) that applies to ``agent``, if any."""
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(agent)
        return None if delay is None else float(delay)


def _parsable_lines(text: str) -> Iterator[str]:
    """The lines of a robots.txt, with each Crawl-delay or Request-rate value that the standard
    library's parser would crash on (``int()`` of "²", or of thousands of digits) replaced by
    one it ignores, so the line still ends its group as it would have."""
    for line in text.splitlines():
        match = _RATE_LINE.match(line)
        if match and not _SANE_RATE[match.group(1).lower()].fullmatch(
            unquote(match.group(2).strip()).strip()
        ):
            line = f"{match.group(1)}: ignored"
        yield line


class RobotsCache:
    """Rules per origin, loaded at most once at a time per origin (other threads wait)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._rules: dict[str, RobotsRules] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def rules(self, origin: str, load: Callable[[str], RobotsRules]) -> RobotsRules:
        """The cached rules for ``origin``, or ``load(origin)`` when missing or expired.

        ``load`` may raise; nothing is cached then.
        """
        with self._lock:
            lock = self._locks.setdefault(origin, threading.Lock())
        with lock:
            cached = self._rules.get(origin)
            if cached is not None and cached.expires > self._clock():
                return cached
            fresh = load(origin)
            with self._lock:
                self._rules[origin] = fresh
                self._forget_expired()
            return fresh

    def _forget_expired(self) -> None:
        if len(self._rules) < 4096:
            return
        now = self._clock()
        for origin in [o for o, r in self._rules.items() if r.expires <= now]:
            del self._rules[origin]
            lock = self._locks.get(origin)
            if lock is not None and not lock.locked():
                del self._locks[origin]
