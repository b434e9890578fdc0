"""Login throttling over a sliding window, shared by every process through the database.

Each attempt is a ``LoginAttempt`` row naming the account name and the client address only by
keyed digests. An account name is throttled after ``login_max_failures`` failures within the
window since its last success; an address (an IPv6 address by its /64) after
``login_max_failures_per_address`` failures within the window, whatever the names (a success
does not clear an address: an attacker's own account must not reset it). Refused attempts are
not counted, so a lock ends when the window has passed, however hard someone keeps knocking.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import takewhile

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from safeeye.config import Settings
from safeeye.crypto import derive_key, keyed_digest
from safeeye.db.models import LoginAttempt

#: Attempts older than this many windows are deleted as new ones come.
KEEP_WINDOWS = 4


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int
    max_failures_per_address: int
    window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottlePolicy:
        return cls(
            settings.login_max_failures,
            settings.login_max_failures_per_address,
            timedelta(minutes=settings.login_window_minutes),
        )


@dataclass(frozen=True)
class AttemptKeys:
    """Who is trying, as stored: the digests of the account name and of the address."""

    username: str
    address: str | None


def attempt_keys(secret: bytes, username: str, address: str | None) -> AttemptKeys:
    """The digests under the account-secrets key (useless without it)."""
    key = derive_key(secret, "login-throttle")
    network = address_network(address)
    return AttemptKeys(
        keyed_digest(key, "user", username[:200].strip().lower()),
        keyed_digest(key, "address", network) if network else None,
    )


def address_network(address: str | None) -> str | None:
    """What an address is counted as: an IPv4 address itself, an IPv6 address by its /64 (one
    machine usually holds a whole /64); anything else as given."""
    if not address or not address.strip():
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip()[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def serialise(session: Session, keys: AttemptKeys) -> None:
    """On PostgreSQL, hold transaction locks on this name and address, so concurrent attempts
    from several processes count one after the other (SQLite serialises writers itself)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for digest in sorted(filter(None, (keys.username, keys.address))):
        lock = int.from_bytes(bytes.fromhex(digest[:16]), "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})


def seconds_to_wait(
    session: Session, policy: ThrottlePolicy, keys: AttemptKeys, now: datetime
) -> int:
    """0 when an attempt may be made now, else the whole seconds until one may."""
    since = now - policy.window
    recent = session.execute(
        select(LoginAttempt.at, LoginAttempt.succeeded)
        .where(LoginAttempt.username_digest == keys.username, LoginAttempt.at > since)
        .order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc())
        .limit(policy.max_failures)
    ).all()
    failures = [at for at, succeeded in takewhile(lambda row: not row[1], recent)]
    until = []
    if len(failures) >= policy.max_failures:
        until.append(failures[-1] + policy.window)
    if keys.address is not None:
        from_address = list(
            session.execute(
                select(LoginAttempt.at)
                .where(
                    LoginAttempt.address_digest == keys.address,
                    LoginAttempt.succeeded.is_(False),
                    LoginAttempt.at > since,
                )
                .order_by(LoginAttempt.at.desc())
                .limit(policy.max_failures_per_address)
            ).scalars()
        )
        if len(from_address) >= policy.max_failures_per_address:
            until.append(from_address[-1] + policy.window)
    if not until:
        return 0
    return max(1, math.ceil((max(until) - now).total_seconds()))


def record(
    session: Session,
    policy: ThrottlePolicy,
    keys: AttemptKeys,
    *,
    succeeded: bool,
    now: datetime,
) -> None:
    """Count one attempt (and forget those long past)."""
    forget = now - policy.window * KEEP_WINDOWS
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < forget))
    session.add(
        LoginAttempt(
            at=now, username_digest=keys.username, address_digest=keys.address, succeeded=succeeded
        )
    )
    session.flush()
