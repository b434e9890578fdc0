"""Writing a file so that readers see the old content or the new, never a part (0600)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_atomically(
    path: Path, parts: Iterable[bytes], *, durable: bool = True, prefix: str | None = None
) -> None:
    """Write ``parts`` to a private temporary file beside ``path`` and rename it over ``path``
    (``durable``: on disk before the rename). The temporary file is removed on any failure."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix or f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                out.write(part)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
