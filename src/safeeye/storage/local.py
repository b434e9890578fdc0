"""Blob backend in a local folder: private folders, atomic renames, overwrite before unlink."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from safeeye.errors import NotFoundError
from safeeye.files import write_atomically
from safeeye.storage.backend import object_name

TEMP_PREFIX = ".tmp-"
ZERO_BLOCK = 1024 * 1024  # a 2 GiB video is overwritten without 2 GiB of zeros in memory


class LocalBackend:
    """Objects as files below ``root`` (the embedded default: ``DATA_DIR/blobs``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, address: str) -> Path:
        """The file that holds the object at ``address``."""
        return self.root / object_name(address)

    def put(self, address: str, parts: Iterable[bytes]) -> None:
        final_path = self.path(address)
        _private_dirs(self.root, final_path.parent)
        write_atomically(final_path, parts, prefix=TEMP_PREFIX)

    def open(self, address: str) -> AbstractContextManager[BinaryIO]:
        try:
            return open(self.path(address), "rb")  # the caller closes it
        except FileNotFoundError as exc:
            raise NotFoundError("no stored blob at that address") from exc

    def exists(self, address: str) -> bool:
        return self.path(address).exists()

    def delete(self, address: str) -> bool:
        """Overwrite the file with zeros, then unlink it; True if there was one."""
        path = self.path(address)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return False
        zeros = bytes(ZERO_BLOCK)
        with open(path, "r+b") as fh:
            for start in range(0, size, ZERO_BLOCK):
                fh.write(zeros[: size - start])
            fh.flush()
            os.fsync(fh.fileno())
        path.unlink()
        return True

    def addresses(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in self.root.glob("??/??/*"):
            if not path.name.startswith(TEMP_PREFIX) and path.is_file():
                yield path.name


def _private_dirs(root: Path, folder: Path) -> None:
    """Create ``folder`` below ``root`` with every new level private (0700)."""
    if folder.is_dir():
        return
    for level in [*reversed(folder.relative_to(root).parents), folder.relative_to(root)]:
        path = root / level
        if not path.is_dir():
            path.mkdir(mode=0o700, exist_ok=True)
            path.chmod(0o700)
