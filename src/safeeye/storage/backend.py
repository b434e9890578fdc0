"""Where encrypted blobs lie: the small interface every blob backend implements."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol


class Readable(Protocol):
    """A stream of stored bytes (a file, an HTTP response body)."""

    def read(self, size: int, /) -> bytes: ...


class BlobBackend(Protocol):
    """Opaque objects (already encrypted) under an address; knows nothing of keys or formats."""

    def put(self, address: str, parts: Iterable[bytes]) -> None:
        """Store the object made of ``parts`` at ``address``, replacing any there; readers see
        the old object or the whole new one, never a part. Streams: ``parts`` is read once."""
        ...

    def open(self, address: str) -> AbstractContextManager[Readable]:
        """The object at ``address`` as a stream; ``NotFoundError`` if there is none."""
        ...

    def exists(self, address: str) -> bool: ...

    def delete(self, address: str) -> bool:
        """Remove the object; True if there was one."""
        ...

    def addresses(self) -> Iterator[str]:
        """The address of every stored object, in no particular order."""
        ...


def object_name(address: str) -> str:
    """Where an object lies below a backend's root: ``ab/cd/abcd...`` (the same layout in a
    folder and in a bucket, so a folder can be copied into a bucket as it is)."""
    return f"{address[:2]}/{address[2:4]}/{address}"


def read_full(stream: Readable, size: int) -> bytes:
    """``size`` bytes from ``stream``, fewer only at its end (a socket may return less)."""
    data = stream.read(size)
    if len(data) in (0, size):
        return data
    pieces = [data]
    missing = size - len(data)
    while missing:
        piece = stream.read(missing)
        if not piece:
            break
        pieces.append(piece)
        missing -= len(piece)
    return b"".join(pieces)
