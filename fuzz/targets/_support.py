"""Helpers shared by the fuzz targets: scratch files for parsers that read paths, text views."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

#: Set by ``fuzz/run.py`` to a folder it removes itself: libFuzzer ends the process without
#: running ``atexit`` handlers.
SCRATCH_ENV = "SAFEEYE_FUZZ_SCRATCH"

_scratch: Path | None = None


def scratch_dir() -> Path:
    """A private folder for this process's scratch files."""
    global _scratch
    if _scratch is None:
        given = os.environ.get(SCRATCH_ENV)
        if given:
            _scratch = Path(given)
            _scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
        else:  # a target called in-process (the regression tests)
            _scratch = Path(tempfile.mkdtemp(prefix="safeeye-fuzz-scratch-"))
            atexit.register(shutil.rmtree, _scratch, True)
    return _scratch


def scratch_file(data: bytes, name: str = "input.bin") -> Path:
    """``data`` written to ``name`` in the scratch folder (overwritten by the next input)."""
    path = scratch_dir() / name
    path.write_bytes(data)
    return path


def text(data: bytes) -> str:
    """``data`` as text the way a careless caller could build it: UTF-8, undecodable bytes kept
    as lone surrogates (so parsers also meet strings that cannot be encoded back)."""
    return data.decode("utf-8", "surrogateescape")


def split_once(data: bytes, separator: bytes = b"\n") -> tuple[bytes, bytes]:
    """``data`` cut at its first ``separator``: (head, rest); (b"", data) when there is none."""
    head, found, rest = data.partition(separator)
    return (head, rest) if found else (b"", data)
