"""Fixtures for the fetcher's tests, a pytest plugin: ``pytest_plugins = ["fetch_fixtures"]``.

Test modules take these as fixtures only; helpers they import come from ``hostile_server``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hostile_server import LOOPBACK_ONLY, HostileServer, MakeFetcher
from safeeye.ingest.fetcher import Fetcher, FetchPolicy


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as running:
        yield running


@pytest.fixture
def make_fetcher(tmp_path: Path) -> Iterator[MakeFetcher]:
    """Fetchers that may reach 127.0.0.1 only, without politeness delays, closed afterwards.

    Their bodies go to ``tmp_path``, so a test can check that nothing is left behind.
    """
    made: list[Fetcher] = []

    def make(clock: Callable[[], float] = time.monotonic, resolver: Any = None, **policy: Any):
        settings: dict[str, Any] = {
            "allowlist": LOOPBACK_ONLY,
            "host_interval": 0.0,
            "retries": 1,
            "backoff_base": 0.05,
            "temp_dir": str(tmp_path),
            "total_timeout": 10.0,
        }
        settings.update(policy)
        fetcher = Fetcher(FetchPolicy(**settings), clock=clock, resolver=resolver)
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        fetcher.close()
