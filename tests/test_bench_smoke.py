"""The benchmarks still run (tiny inputs; their timings are printed, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_scan_benchmark_prints_its_headline_figures() -> None:
    out = _run("bench/scan.py", "--quick", "--photos", "4", "--video-seconds", "10")
    lines = out.splitlines()
    assert any(line.startswith("images_per_second: ") for line in lines), out
    assert any(line.startswith("video_x_realtime: ") for line in lines), out


def test_face_calibration_prints_a_threshold() -> None:
    out = _run("bench/face_calibration.py")
    assert "calibrated_face_distance: " in out


def test_discovery_benchmark_prints_its_headline_figures() -> None:
    out = _run("bench/discovery.py", "--quick", "--pages", "30")
    lines = out.splitlines()
    assert any(line.startswith("pages_per_second: ") for line in lines), out
    assert any(line.startswith("appear_to_match_seconds: ") for line in lines), out


def test_workers_benchmark_prints_its_headline_figures() -> None:
    from test_celery_workers import REDIS, _broker_reachable

    if reason := _broker_reachable(REDIS):
        import pytest

        pytest.skip(reason)
    out = _run("bench/workers.py", "--quick", "--photos", "6")
    lines = out.splitlines()
    assert any(line.startswith("worker_media_per_second: ") for line in lines), out
    assert any(line.startswith("queue_latency_ms: ") for line in lines), out


def test_notices_benchmark_prints_its_headline_figures() -> None:
    out = _run("bench/notices.py", "--count", "50")
    lines = out.splitlines()
    assert any(line.startswith("batch_50_seconds: ") for line in lines), out
    assert any(line.startswith("match_to_sent_seconds: ") for line in lines), out


def test_web_benchmark_prints_its_headline_figures() -> None:
    out = _run("bench/web.py", "--quick", "--matches", "200", "--rounds", "3")
    lines = out.splitlines()
    assert any(line.startswith("median_page_ms: ") for line in lines), out
    assert any(line.startswith("p95_page_ms: ") for line in lines), out
