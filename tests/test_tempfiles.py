"""Fetched bodies live in a private folder per process under the data dir; dead ones are removed."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import make_settings
from hostile_server import HostileServer
from safeeye.ingest.fetcher import Fetcher
from safeeye.ingest.policy import fetch_policy
from safeeye.tempfiles import TEMP_SUBDIR, host_tag, process_temp_dir, start_time

# A process that makes its fetch folder the way the monitor does, says where, then waits.
_PROCESS = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from safeeye.config import Settings
    from safeeye.ingest.policy import fetch_policy

    policy = fetch_policy(Settings(data_dir=Path(sys.argv[1])))
    Path(policy.temp_dir, "body").write_bytes(b"plaintext media")
    print(json.dumps(policy.temp_dir), flush=True)
    time.sleep(float(sys.argv[2]))
    """
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def _folder(root: Path, pid: int, started: int, host: str | None = None) -> Path:
    folder = root / f"{host or host_tag()}@{pid}.{started}.0badc0de"
    folder.mkdir(parents=True)
    (folder / "safeeye-fetch-leftover").write_bytes(b"plaintext media")
    return folder


def test_folders_of_dead_processes_are_removed_and_live_ones_kept(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    root = tmp_path / TEMP_SUBDIR
    live_start = start_time(sleeper.pid)
    assert live_start is not None and live_start > 0
    dead = _folder(root, _dead_pid(), 12345)
    live = _folder(root, sleeper.pid, live_start)
    reused = _folder(root, sleeper.pid, live_start + 1)  # that pid now belongs to another process
    elsewhere = _folder(root, _dead_pid(), 1, host="another-host")  # its own host cleans it
    stranger = root / "not-a-process-folder"
    stranger.mkdir()

    mine = process_temp_dir(tmp_path)

    assert not dead.exists() and not reused.exists()
    assert live.exists() and (live / "safeeye-fetch-leftover").exists()
    assert elsewhere.exists() and stranger.exists() and mine.is_dir()
    assert process_temp_dir(tmp_path) == mine  # one folder per process


def test_the_folders_and_the_fetched_files_are_private(tmp_path: Path) -> None:
    root = tmp_path / "data" / TEMP_SUBDIR
    root.mkdir(parents=True, mode=0o755)
    root.chmod(0o755)  # whatever existed before is made private
    settings = make_settings(
        tmp_path / "data", fetch_allowlist=("127.0.0.1",), fetch_host_interval=0.0
    )
    policy = fetch_policy(settings)
    folder = Path(policy.temp_dir or "")
    assert folder.parent == root and _mode(root) == 0o700 and _mode(folder) == 0o700
    with HostileServer() as server, Fetcher(policy) as fetcher:
        server.add("/a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, content_type="image/png")
        with fetcher.fetch(server.url("/a.png")) as result:
            assert result.path is not None and result.path.parent == folder
            assert _mode(result.path) == 0o600
        assert list(folder.iterdir()) == []


def _start(data_dir: Path, wait: float) -> tuple[subprocess.Popen[str], Path]:
    process = subprocess.Popen(
        [sys.executable, "-c", _PROCESS, str(data_dir), str(wait)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, "the process did not start"
    return process, Path(json.loads(line))


def test_a_killed_monitor_leaves_a_folder_that_the_next_process_removes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    killed, killed_folder = _start(data, 60)
    running, running_folder = _start(data, 60)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        assert (killed_folder / "body").exists()  # kill -9 runs no clean-up

        mine = process_temp_dir(data)  # what the next process does on start-up

        assert not killed_folder.exists()
        assert (running_folder / "body").read_bytes() == b"plaintext media"
        assert mine.parent == killed_folder.parent != mine
    finally:
        running.kill()
        running.wait(10)


def test_a_process_that_exits_normally_removes_its_folder(tmp_path: Path) -> None:
    process, folder = _start(tmp_path / "data", 0)
    assert process.wait(30) == 0
    assert not folder.exists() and os.listdir(folder.parent) == []
