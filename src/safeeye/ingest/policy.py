"""The fetch policy the settings ask for (one place, for the monitor and the scanner)."""

from __future__ import annotations

from safeeye.config import Settings
from safeeye.ingest.fetcher import FetchPolicy
from safeeye.tempfiles import process_temp_dir


def fetch_policy(settings: Settings) -> FetchPolicy:
    """Limits and politeness for fetching, from ``SAFEEYE_*`` settings.

    Bodies are fetched into this process's private folder under the data dir (made, and the
    folders of dead processes removed, on the first call).
    """
    return FetchPolicy(
        max_bytes=settings.max_media_bytes,
        max_page_bytes=settings.fetch_max_page_bytes,
        total_timeout=settings.fetch_total_timeout,
        host_interval=settings.fetch_host_interval,
        allowlist=settings.fetch_allowlist,
        temp_dir=str(process_temp_dir(settings.ensure_data_dir())),
    )
