"""Every fuzz target survives a short atheris run from its seed corpus (see fuzz/README.md).

Each target runs in its own process for a bounded number of inputs; a crash, a hang or a
memory blow-up fails the test with the path of the saved input that caused it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "fuzz" / "run.py"
CORPUS = REPO / "fuzz" / "corpus"
TARGETS = sorted(p.stem for p in (REPO / "fuzz" / "targets").glob("*.py") if p.stem[0] != "_")
RUNS = 2000  # inputs per target (the seeds count): about a second each on a small machine
MAX_SECONDS = 20  # a bound on one target's run however slow the machine
PER_INPUT_TIMEOUT = 10  # seconds; an input that takes longer is a hang


def fuzz(target: str, artifacts: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(RUN), target, "--artifacts", str(artifacts), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)


def report(result: subprocess.CompletedProcess[str], artifacts: Path) -> str:
    saved = sorted(str(p) for p in artifacts.iterdir())
    log = f"{result.stdout}\n{result.stderr}"
    return f"exit {result.returncode}; inputs saved: {saved}\n{log[-6000:]}"


def test_every_target_has_a_seed_corpus() -> None:
    assert len(TARGETS) >= 10, TARGETS
    for target in TARGETS:
        seeds = [p for p in (CORPUS / target).glob("*") if p.is_file()]
        assert len(seeds) >= 3, f"{target} has {len(seeds)} seeds"
        assert sum(p.stat().st_size for p in seeds) < 64 * 1024, f"{target}'s corpus is large"


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_survives_a_short_run(target: str, tmp_path: Path) -> None:
    corpus_before = sorted((CORPUS / target).iterdir())

    result = fuzz(
        target,
        tmp_path,
        *("--runs", str(RUNS), "--max-seconds", str(MAX_SECONDS)),
        *("--timeout", str(PER_INPUT_TIMEOUT)),
    )

    assert result.returncode == 0 and not any(tmp_path.iterdir()), report(result, tmp_path)
    assert f"fuzz: {target}: no finding" in result.stdout
    assert sorted((CORPUS / target).iterdir()) == corpus_before  # nothing written into the repo


# The runner itself: a target that crashes or hangs on some input must fail the run, with that
# input saved, or the test above could not fail.

CRASHES_ON_B = """
def test_one_input(data: bytes) -> None:
    if data[:1] == b"B":
        raise KeyError("the kind of bug a fuzz target exists to find")
"""
HANGS_ON_B = """
def test_one_input(data: bytes) -> None:
    while data[:1] == b"B":
        pass
"""


@pytest.mark.parametrize(
    ("source", "prefix"),
    [(CRASHES_ON_B, "crash-"), (HANGS_ON_B, "timeout-")],
    ids=["crash", "hang"],
)
def test_runner_reports_the_input_that_crashes_or_hangs_a_target(
    tmp_path: Path, source: str, prefix: str
) -> None:
    target = tmp_path / "broken_target.py"
    target.write_text(source)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "seed").write_bytes(b"A")
    artifacts = tmp_path / "found"

    result = fuzz(
        str(target),
        artifacts,
        "--runs",
        "100000",
        "--max-seconds",
        "60",
        "--timeout",
        "1",
        "--corpus",
        str(seeds),
    )

    saved = sorted(artifacts.iterdir())
    assert result.returncode == 1, report(result, artifacts)
    assert [p.name[: len(prefix)] for p in saved] == [prefix], saved
    assert saved[0].read_bytes()[:1] == b"B"
    assert f"FINDING {saved[0]}" in result.stdout


def test_runner_replays_a_saved_input(tmp_path: Path) -> None:
    target = tmp_path / "broken_target.py"
    target.write_text(CRASHES_ON_B)
    harmless, crashing = tmp_path / "harmless", tmp_path / "crashing"
    harmless.write_bytes(b"A")
    crashing.write_bytes(b"B")

    assert fuzz(str(target), tmp_path / "a", str(harmless)).returncode == 0
    assert fuzz(str(target), tmp_path / "b", str(crashing)).returncode == 1
