"""A unit of work: one database session, the actor who acts, and the service's parts.

Domain services take a ``Work`` from their caller and never open sessions of their own, so a
permission check, the action and its audit event commit together, and the audit log names who
acted. Each edge opens one: the CLI per command, a web request per request, a task per task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from safeeye.db.models import AuditEvent
from safeeye.errors import PermissionDenied

if TYPE_CHECKING:
    from safeeye.app import SafeEye


class Role(StrEnum):
    """What a person (or a process) may do; see ``Actor.may``."""

    ADMIN = "admin"
    COUNSELOR = "counselor"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"
    SYSTEM = "system"  # the scanner, the monitor, the scheduler


@dataclass(frozen=True)
class Actor:
    """Who acts: ``name`` goes into the audit log (``user:kim``, ``cli:root``, ``worker``)."""

    name: str
    roles: frozenset[Role]

    @classmethod
    def operator(cls, name: str) -> Actor:
        """Someone at the server's console: every role (they hold the master key anyway)."""
        return cls(name, frozenset(Role))

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(name, frozenset({Role.SYSTEM}))

    def may(self, *roles: Role) -> bool:
        """True when the actor holds one of ``roles`` (an admin may everything)."""
        return Role.ADMIN in self.roles or bool(self.roles.intersection(roles))


@dataclass
class Work:
    """One unit of work; ``app.work(actor)`` opens one and commits it (or rolls back)."""

    app: SafeEye
    session: Session
    actor: Actor
    _after_commit: list[Callable[[], None]] = field(default_factory=list)

    def require(self, *roles: Role, action: str) -> None:
        """``PermissionDenied`` unless the actor holds one of ``roles``."""
        if not self.actor.may(*roles):
            raise PermissionDenied(f"{self.actor.name} may not {action}")

    def audit(
        self,
        action: str,
        object_type: str,
        object_id: str | int | None = None,
        details: dict[str, Any] | None = None,
        *,
        case: tuple[int, bytes] | None = None,
        private: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Record ``action`` by this actor in this unit of work (it commits with the change)."""
        return self.app.audit.append(
            self.session,
            self.actor.name,
            action,
            object_type,
            object_id,
            details,
            case=case,
            private=private,
        )

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the unit of work has committed (e.g. destroy files)."""
        self._after_commit.append(action)

    def commit(self) -> None:
        """Commit what is done so far (a batch service commits item by item)."""
        self.session.commit()
        self._run_after_commit()

    def _run_after_commit(self) -> None:
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            action()
