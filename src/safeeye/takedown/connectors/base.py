"""The one interface every connector implements, and its registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from safeeye.errors import SafeEyeError
from safeeye.takedown.model import OutgoingNotice, RecipientInfo, SendResult

if TYPE_CHECKING:
    from safeeye.app import SafeEye

CONNECTORS: dict[str, type[Connector]] = {}


class ConnectorError(SafeEyeError):
    """A send that did not happen; ``retryable`` when trying again later may work (the
    recipient's server is away) rather than never (it refuses the request as malformed)."""

    code = "connector"

    def __init__(self, message: str, *, retryable: bool, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retryable = retryable


class Connector(ABC):
    """Sends notices to one recipient. ``send`` is called with the batch's idempotency key and
    must be harmless to repeat with the same key (the outbox repeats it after a crash): the
    recipient's system deduplicates by key, or the connector says so in its docstring."""

    name: ClassVar[str]

    def __init__(self, app: SafeEye) -> None:
        self.app = app

    @abstractmethod
    def send(self, key: str, recipient: RecipientInfo, notices: list[OutgoingNotice]) -> SendResult:
        """Send ``notices`` (one batch or one notice) under idempotency ``key``; raises
        ``ConnectorError``."""

    def close(self) -> None:  # noqa: B027 - most connectors hold nothing
        """Release connections."""


def register(cls: type[Connector]) -> type[Connector]:
    """Class decorator: make a connector available by its ``name``."""
    CONNECTORS[cls.name] = cls
    return cls


ConnectorFactory = Callable[["SafeEye"], Connector]
