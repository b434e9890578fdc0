"""Content-Encoding of fetched bodies: one known coding is undone in bounded steps, others refused.

httpx decodes while it streams, before any byte limit can look at the output, and accepts
stacked codings (``gzip, gzip``), so 13 KB on the wire could become gigabytes in one call. The
fetcher therefore reads raw bytes and undoes the coding here: each call to the decompressor
returns at most ``CHUNK`` bytes, so the fetcher's limits see every piece before the next one
is made, and memory stays bounded whatever the ratio.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from safeeye.errors import FetchError

#: The most one decompression step returns.
CHUNK = 64 * 1024
#: The codings undone (x-gzip is gzip's old name). Brotli and zstd would need new dependencies.
KNOWN = frozenset({"gzip", "x-gzip", "deflate"})


def body_coding(values: Iterable[str], host: str) -> str | None:
    """The one content coding to undo (None for none); ``bad_encoding`` when stacked or unknown.

    ``values`` are the Content-Encoding header values, split at commas.
    """
    codings = [v.strip().lower() for v in values]
    codings = [c for c in codings if c and c != "identity"]
    if len(codings) > 1:
        shown = ", ".join(codings)[:80]
        raise FetchError(
            f"{host} sent a body with stacked encodings ({shown!r}); refused",
            code="bad_encoding",
        )
    if not codings:
        return None
    if codings[0] not in KNOWN:
        raise FetchError(
            f"{host} sent a body in an unsupported encoding ({codings[0][:40]!r}); refused",
            code="bad_encoding",
        )
    return "gzip" if codings[0] == "x-gzip" else codings[0]


class BodyDecoder:
    """Undoes one content coding (or none) chunk by chunk, each output at most ``CHUNK`` bytes.

    Data after the end of the compressed stream is ignored. ``FetchError("bad_encoding")`` for
    a corrupt stream, or (from ``finish``) one that ends early.
    """

    def __init__(self, coding: str | None, host: str) -> None:
        if coding is not None and coding not in KNOWN:
            raise ValueError(f"unknown content coding {coding!r}")
        self.coding = "gzip" if coding == "x-gzip" else coding
        self._host = host
        self._inflater: zlib._Decompress | None = None
        self._pending = b""  # deflate: the first byte, until the header can be judged
        self._seen = False

    def feed(self, raw: bytes) -> Iterator[bytes]:
        """The decoded pieces of ``raw`` (the next bytes of the body)."""
        if not raw:
            return
        self._seen = True
        if self.coding is None:
            for start in range(0, len(raw), CHUNK):
                yield raw[start : start + CHUNK]
            return
        if self._inflater is None:
            raw = self._pending + raw
            if self.coding == "deflate" and len(raw) < 2:
                self._pending = raw
                return
            self._pending = b""
            self._inflater = self._start(raw)
        yield from self._inflate(raw)

    def finish(self) -> Iterator[bytes]:
        """What is left once the whole body was fed; ``bad_encoding`` if the stream is cut."""
        if self.coding is None or not self._seen:
            return
        if self._inflater is None:  # a one-byte deflate body
            self._inflater = self._start(self._pending)
            yield from self._inflate(self._pending)
        if not self._inflater.eof:
            raise FetchError(
                f"the {self.coding} body from {self._host} ends before its compressed stream does",
                code="bad_encoding",
            )

    def _start(self, head: bytes) -> zlib._Decompress:
        if self.coding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        # "deflate" is meant to be zlib-wrapped, but many servers send a raw deflate stream.
        return zlib.decompressobj(zlib.MAX_WBITS if _zlib_header(head) else -zlib.MAX_WBITS)

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        inflater = self._inflater
        assert inflater is not None
        while not inflater.eof:  # bytes after the end of the stream are ignored
            try:
                out = inflater.decompress(data, CHUNK)
            except zlib.error as exc:
                raise FetchError(
                    f"the {self.coding} body from {self._host} is corrupt", code="bad_encoding"
                ) from exc
            tail = inflater.unconsumed_tail
            if out:
                yield out
            if not tail and len(out) < CHUNK:
                return  # all input used and nothing held back
            if not out and len(tail) == len(data):
                return  # no progress: a guard, zlib always takes input or gives output
            data = tail


def _zlib_header(head: bytes) -> bool:
    """True when ``head`` opens with a zlib header (deflate method, valid check bits)."""
    if len(head) < 2:
        return False
    cmf, flg = head[0], head[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0
