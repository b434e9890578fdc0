"""The first administrator: made once, when no account exists, so a new workbench can be
entered at all."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from safeeye.accounts.passwords import hash_password, one_time_password
from safeeye.db.models import User
from safeeye.work import Role, Work

FIRST_ADMIN = "admin"


@dataclass(frozen=True)
class FirstAdmin:
    """The account made and its one-time password, to print once (``safeeye serve``)."""

    username: str
    password: str


def ensure_first_admin(work: Work) -> FirstAdmin | None:
    """Make the ``admin`` account with a one-time password (to be changed at first login)
    when no account exists; None otherwise (also when another process made it meanwhile)."""
    work.require(Role.SYSTEM, action="create the first administrator")
    if work.session.execute(select(User.id).limit(1)).first() is not None:
        return None
    password = one_time_password()
    user = User(
        username=FIRST_ADMIN,
        display_name="Administrator",
        roles=[Role.ADMIN.value],
        password_hash=hash_password(password),
        must_change_password=True,
    )
    try:
        with work.session.begin_nested():
            work.session.add(user)
    except DBIntegrityError:  # another process started at the same moment and made it
        return None
    work.audit(
        "account.created",
        "user",
        user.id,
        {"username": FIRST_ADMIN, "roles": [Role.ADMIN.value], "one_time_password": True},
    )
    return FirstAdmin(FIRST_ADMIN, password)
