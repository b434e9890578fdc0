"""``safeeye serve`` as a real process for the browser tests: a fresh data directory, a free
port, the first administrator's one-time password read from what it prints, stopped with
SIGTERM as an operator would."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

FIRST_ADMIN = re.compile(r"First administrator:\s*(\S+)\s+one-time password:\s*(\S+)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveServer:
    """A running ``safeeye serve``; ``output`` collects what it printed."""

    data_dir: Path
    port: int
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    admin: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def printed(self) -> str:
        return "".join(self.output)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def start_server(
    data_dir: Path, env: Mapping[str, str], *args: str, timeout: float = 120.0
) -> LiveServer:
    """Starts ``safeeye serve`` on a free port with ``SAFEEYE_*`` settings from ``env`` and
    waits until it answers ``/healthz``."""
    port = free_port()
    environment = {
        **os.environ,
        "SAFEEYE_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
        **env,
    }
    command = [sys.executable, "-m", "safeeye.cli", "serve", "--port", str(port), *args]
    process = subprocess.Popen(
        command,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = LiveServer(data_dir, port, process)

    def collect() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.output.append(line)

    threading.Thread(target=collect, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"safeeye serve stopped:\n{server.printed()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        server.stop()
        raise RuntimeError(f"safeeye serve did not answer in {timeout} s:\n{server.printed()}")
    found = FIRST_ADMIN.search(server.printed())
    if found:
        server.admin = (found.group(1), found.group(2))
    return server
