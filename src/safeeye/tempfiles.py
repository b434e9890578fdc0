"""A private folder per process for temporary files (fetched bodies), and removal of dead ones'.

Temporary files hold victims' media in plaintext for as long as a fetch and its scan take, so
they live under the data dir, not in the shared system temp dir: ``DATA_DIR/tmp/`` (0700),
one folder per process (0700; ``mkstemp`` makes the files 0600). A folder's name says which
process made it: host name, pid and the process's start time, so that a process killed with
``kill -9`` leaves a folder the next process on that host can tell apart from a running one's,
even once the pid is reused. Folders of other hosts (a data dir on shared storage) are left to
their own host.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import socket
import threading
from pathlib import Path

from safeeye.errors import ConfigError

TEMP_SUBDIR = "tmp"

_made: dict[tuple[Path, int], Path] = {}
_lock = threading.Lock()
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")


def process_temp_dir(data_dir: Path) -> Path:
    """This process's private folder under ``data_dir/tmp/``, made on first use.

    The first call in a process also removes the folders that processes no longer alive left
    there; the folder itself is removed when the process exits normally.
    """
    root = Path(os.path.abspath(data_dir / TEMP_SUBDIR))
    key = (root, os.getpid())
    with _lock:
        made = _made.get(key)
        if made is not None and made.is_dir():
            return made
        _private_dir(root)
        remove_stale(root)
        pid = os.getpid()
        made = root / f"{host_tag()}@{pid}.{start_time(pid) or 0}.{secrets.token_hex(4)}"
        _private_dir(made)
        _made[key] = made
        atexit.register(_remove_own, made, pid)
        return made


def remove_stale(root: Path) -> list[Path]:
    """Remove the folders under ``root`` of this host's processes that are no longer alive.

    Returns what was removed. A folder of a running process is never touched; a name that is
    not a process folder's, or another host's folder, is left alone.
    """
    removed: list[Path] = []
    host = host_tag()
    for entry in root.iterdir():
        owner = _owner(entry.name)
        if owner is None or owner[0] != host or entry.is_symlink() or not entry.is_dir():
            continue
        if not _alive(owner[1], owner[2]):
            shutil.rmtree(entry, ignore_errors=True)  # another new process may race us to it
            removed.append(entry)
    return removed


def _private_dir(path: Path) -> None:
    if path.is_symlink():
        raise ConfigError(f"{path.name} in the data dir is a symbolic link; refusing to use it")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)  # whatever existed before, or the umask, made


def _owner(name: str) -> tuple[str, int, int] | None:
    """(host, pid, start time) from a process folder's name; None for any other name."""
    host, at, rest = name.rpartition("@")
    parts = rest.split(".")
    if not at or len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts[:2]):
        return None
    return host, int(parts[0]), int(parts[1])


def _alive(pid: int, started: int) -> bool:
    """True when process ``pid`` runs and (where known) is the one that started at ``started``."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    now = start_time(pid)
    if now is None:  # no /proc: the pid alone has to do
        return True
    return now != -1 and (started == 0 or now == started)


def start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot; -1 for a zombie; None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return -1 if Path("/proc/self/stat").exists() else None
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or not fields[19].isdigit():
        return None
    return -1 if fields[0] == "Z" else int(fields[19])


def host_tag() -> str:
    """This host's name as it appears in folder names."""
    return _UNSAFE.sub("_", socket.gethostname())[:64] or "host"


def _remove_own(folder: Path, pid: int) -> None:
    if os.getpid() == pid:  # not in a forked child that inherited the handler
        shutil.rmtree(folder, ignore_errors=True)
