"""What every opened media file offers: its facts (``MediaInfo``) and its frames."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

from safeeye.media.frames import Frame


@dataclass(frozen=True)
class MediaInfo:
    """What a media file is, known before any pixel is decoded.

    ``width``/``height`` are of the upright picture (EXIF orientation applied). ``duration`` is
    in seconds (None for a still image or a video that does not declare it); ``frame_count``
    is the number of frames in the file when known.
    """

    media_type: Literal["image", "video"]
    format: str
    width: int
    height: int
    duration: float | None
    frame_count: int | None
    animated: bool


class DecodedMedia(ABC):
    """An opened media file: ``info`` at once, ``frames()`` lazily; close it (or use ``with``)."""

    info: MediaInfo

    @abstractmethod
    def frames(self) -> Iterator[Frame]:
        """The frames chosen for analysis, in time order, decoded one at a time.

        Raises ``MediaError`` if the file turns out broken partway; frames already yielded
        remain valid.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the file and decoder; safe to call twice."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
