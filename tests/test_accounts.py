"""Accounts: Argon2 passwords, one refusal for every wrong login, throttling shared through the
database, sessions that end, TOTP without replay, API tokens kept as digests, roles, audit."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update
from typer.testing import CliRunner

from conftest import TESTER, act, make_app, make_settings
from safeeye import cli
from safeeye.accounts import (
    ANONYMOUS,
    Account,
    Client,
    LoginFailed,
    LoginThrottled,
    SecondFactorRequired,
    actor_for,
    authenticate,
    change_password,
    check_csrf,
    confirm_totp,
    create_api_token,
    create_user,
    disable_totp,
    end_session,
    enrol_totp,
    ensure_first_admin,
    list_api_tokens,
    list_sessions,
    list_users,
    passwords,
    reset_password,
    resolve_api_token,
    resolve_session,
    revoke_api_token,
    start_session,
    update_user,
)
from safeeye.accounts.bearer import digest
from safeeye.app import SafeEye
from safeeye.db.models import ApiToken, AuditEvent, LoginAttempt, User, WebSession
from safeeye.db.types import utcnow
from safeeye.errors import ConflictError, PermissionDenied, ValidationError
from safeeye.work import Actor, Role

PASSWORD = "correct horse battery staple"
#: Small limits, so a test fails few (slow, Argon2) logins to reach them.
LIMITS = {"login_max_failures": 3, "login_max_failures_per_address": 4}
HERE = Client("198.51.100.7", "Firefox")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[SafeEye]:
    """The service on SQLite without the models (accounts need none)."""
    safe = make_app(make_settings(tmp_path / "data", **LIMITS))
    yield safe
    safe.close()


@pytest.fixture(params=["sqlite", "postgres"])
def two_apps(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SafeEye, SafeEye]]:
    """Two service instances (as two processes would have) on one database, on each backend."""
    url = request.getfixturevalue("postgres_schema") if request.param == "postgres" else None
    first = make_app(make_settings(tmp_path / "data", url, **LIMITS))
    second = make_app(make_settings(tmp_path / "data", url, **LIMITS))
    yield first, second
    first.close()
    second.close()


def _user(app: SafeEye, name: str = "kim", *roles: Role, **extra: Any) -> Account:
    made = act(app, create_user, name, roles or [Role.REVIEWER], password=PASSWORD, **extra)
    return made.account


def _login(
    app: SafeEye,
    name: str,
    password: str = PASSWORD,
    code: str | None = None,
    client: Client = HERE,
) -> Account:
    return app.call(ANONYMOUS, authenticate, name, password, code, client)


def _refusal(app: SafeEye, name: str, password: str, client: Client = HERE) -> Exception:
    with pytest.raises((LoginFailed, LoginThrottled, SecondFactorRequired)) as caught:
        app.call(ANONYMOUS, authenticate, name, password, None, client)
    return caught.value


def _row(app: SafeEye, name: str) -> User:
    with app.db.session(read_only=True) as session:
        return session.execute(select(User).where(User.username == name)).scalar_one()


def _shift(app: SafeEye, model: type[Any], column: str, by: timedelta) -> None:
    """Move the clock for ``model``'s rows: ``column`` happened ``by`` earlier."""
    with app.db.session() as session:
        for row in session.execute(select(model)).scalars():
            setattr(row, column, getattr(row, column) - by)


def _age_attempts(app: SafeEye, minutes: float) -> None:
    """Every login attempt happened ``minutes`` earlier."""
    _shift(app, LoginAttempt, "at", timedelta(minutes=minutes))


def _audit(app: SafeEye) -> list[AuditEvent]:
    with app.db.session(read_only=True) as session:
        return list(session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars())


# -- passwords -------------------------------------------------------------------------------


def test_passwords_are_argon2id_and_a_weaker_hash_is_upgraded_at_the_next_login(
    app: SafeEye,
) -> None:
    _user(app)
    assert _row(app, "kim").password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with app.db.session() as session:
        session.execute(update(User).values(password_hash=weak))

    assert _login(app, "kim").username == "kim"

    upgraded = _row(app, "kim").password_hash
    assert upgraded != weak and not passwords.needs_rehash(upgraded)
    assert _audit(app)[-1].details["rehashed"] is True
    assert _login(app, "kim").username == "kim"  # the new hash verifies
    assert _audit(app)[-1].details["rehashed"] is False


def test_a_new_password_must_be_long_enough_and_not_the_username(app: SafeEye) -> None:
    with pytest.raises(ValidationError, match="at least 12"):
        act(app, create_user, "lee", ["counselor"], password="short")
    with pytest.raises(ValidationError, match="username"):
        act(app, create_user, "leeleeleelee", ["counselor"], password="LeeLeeLeeLee")
    with pytest.raises(ValidationError, match="role"):
        act(app, create_user, "lee", ["system"], password=PASSWORD)


def test_unknown_name_wrong_password_and_disabled_account_are_refused_alike_after_one_hash(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    _user(app, "kim")
    _user(app, "park", Role.COUNSELOR)
    act(app, update_user, "park", disabled=True)
    verified: list[str] = []
    real = passwords.HASHER

    class Counting:
        def verify(self, stored: str, password: str) -> bool:
            verified.append(stored)
            return real.verify(stored, password)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(passwords, "HASHER", Counting())
    refusals = [
        _refusal(app, "nobody", PASSWORD),
        _refusal(app, "kim", "wrong password!!"),
        _refusal(app, "park", PASSWORD),  # the right password of a disabled account
    ]

    assert {(type(r), r.code, str(r)) for r in refusals} == {
        (LoginFailed, "bad_credentials", "wrong username or password")
    }
    # Each refusal verified exactly one Argon2 hash of the same cost: no timing difference.
    assert len(verified) == 3
    assert len({stored.split("$")[3] for stored in verified}) == 1


# -- throttling ------------------------------------------------------------------------------


def test_failures_throttle_an_account_name_for_the_window_then_it_opens_again(
    app: SafeEye,
) -> None:
    _user(app)
    for _ in range(3):
        assert isinstance(_refusal(app, "kim", "wrong password!!"), LoginFailed)

    throttled = _refusal(app, "kim", PASSWORD)  # even the right password waits
    assert isinstance(throttled, LoginThrottled) and throttled.code == "throttled"
    assert 14 * 60 < throttled.retry_after <= 15 * 60
    # From another address too: the account name is throttled wherever the guesses come from.
    assert isinstance(_refusal(app, "KIM ", PASSWORD, Client("203.0.113.9")), LoginThrottled)

    _age_attempts(app, 15)
    assert _login(app, "kim").username == "kim"
    events = [e for e in _audit(app) if e.action == "account.login_failed"]
    assert [e.details["throttled_now"] for e in events] == [False, False, True]


def test_a_success_clears_the_name_but_not_the_address(app: SafeEye) -> None:
    _user(app)
    for _ in range(2):
        _refusal(app, "kim", "wrong password!!")
    _login(app, "kim")
    for _ in range(2):
        assert isinstance(_refusal(app, "kim", "wrong password!!"), LoginFailed)
    # The address has failed 4 times (its limit) whatever the success in between.
    assert isinstance(_refusal(app, "kim", PASSWORD), LoginThrottled)
    # The name itself has failed twice since its success: from elsewhere it may log in.
    assert _login(app, "kim", client=Client("203.0.113.9")).username == "kim"


def test_one_address_guessing_many_names_is_throttled_and_an_ipv6_network_counts_as_one(
    app: SafeEye,
) -> None:
    _user(app)
    for n in range(4):
        _refusal(app, f"guess{n}", PASSWORD, Client(f"2001:db8:1:2::{n + 1}"))

    throttled = _refusal(app, "kim", PASSWORD, Client("2001:db8:1:2:ffff::9"))
    assert isinstance(throttled, LoginThrottled)
    assert isinstance(
        _refusal(app, "kim", "wrong password!!", Client("2001:db8:1:3::1")), LoginFailed
    )
    # Nothing identifying is stored: the names and addresses are keyed digests.
    with app.db.session(read_only=True) as session:
        stored = json.dumps(
            [
                [a.username_digest, a.address_digest]
                for a in session.execute(select(LoginAttempt)).scalars()
            ]
        )
    assert "guess" not in stored and "2001" not in stored


def test_throttling_is_shared_by_two_processes_on_one_database(
    two_apps: tuple[SafeEye, SafeEye],
) -> None:
    first, second = two_apps
    _user(first)
    _refusal(first, "kim", "wrong password!!")
    _refusal(second, "kim", "wrong password!!")
    _refusal(first, "kim", "wrong password!!")

    assert isinstance(_refusal(second, "kim", PASSWORD), LoginThrottled)
    assert isinstance(_refusal(first, "kim", PASSWORD), LoginThrottled)
    _age_attempts(second, 16)
    assert _login(first, "kim").username == "kim"


def test_concurrent_guesses_from_two_processes_get_no_more_tries_than_the_limit(
    two_apps: tuple[SafeEye, SafeEye],
) -> None:
    first, second = two_apps
    _user(first)
    start = threading.Barrier(6)

    def guess(n: int) -> str:
        start.wait()
        return type(_refusal((first, second)[n % 2], "kim", f"wrong guess {n}!")).__name__

    with ThreadPoolExecutor(6) as pool:
        outcomes = sorted(pool.map(guess, range(6)))

    assert outcomes == ["LoginFailed"] * 3 + ["LoginThrottled"] * 3


# -- sessions --------------------------------------------------------------------------------


def _session(app: SafeEye, account: Account) -> str:
    return app.call(actor_for(account), start_session, account, HERE).token


def test_a_session_slides_while_used_and_ends_when_idle_or_past_its_lifetime(
    app: SafeEye,
) -> None:
    account = _login(app, _user(app).username)
    token = _session(app, account)
    info = app.call(ANONYMOUS, resolve_session, token)
    assert info is not None and info.account.username == "kim"
    with app.db.session() as session:
        row = session.execute(select(WebSession)).scalar_one()
        assert row.token_digest == digest(token) and token not in json.dumps(row.client)
        assert row.client == "198.51.100.7 Firefox"

    def age(column: str, by: timedelta) -> None:
        _shift(app, WebSession, column, by)

    age("last_seen_at", timedelta(minutes=25))
    assert app.call(ANONYMOUS, resolve_session, token) is not None  # used again: it slides
    age("last_seen_at", timedelta(minutes=25))
    assert app.call(ANONYMOUS, resolve_session, token) is not None
    age("last_seen_at", timedelta(minutes=31))
    assert app.call(ANONYMOUS, resolve_session, token) is None  # idle too long

    token = _session(app, account)
    age("expires_at", timedelta(hours=12))  # used a second ago, but 12 hours after login
    assert app.call(ANONYMOUS, resolve_session, token) is None
    assert app.call(ANONYMOUS, resolve_session, "forged") is None


def test_logout_ends_a_session_and_csrf_tokens_belong_to_their_session(app: SafeEye) -> None:
    account = _login(app, _user(app).username)
    token, other = _session(app, account), _session(app, account)
    info = app.call(ANONYMOUS, resolve_session, token)
    other_info = app.call(ANONYMOUS, resolve_session, other)
    assert info and other_info
    assert check_csrf(info, info.csrf_token)
    assert not check_csrf(info, other_info.csrf_token) and not check_csrf(info, None)

    assert app.call(ANONYMOUS, end_session, token) is True
    assert app.call(ANONYMOUS, resolve_session, token) is None
    assert app.call(ANONYMOUS, resolve_session, other) is not None
    assert app.call(ANONYMOUS, end_session, token) is False
    assert "account.logout" in [e.action for e in _audit(app)]


def test_a_password_change_ends_the_other_sessions_and_a_reset_ends_them_all(
    app: SafeEye,
) -> None:
    account = _login(app, _user(app).username)
    here, there = _session(app, account), _session(app, account)
    new = "a much better passphrase"
    with pytest.raises(LoginFailed, match="current password"):
        app.call(actor_for(account), change_password, "not it at all", new)

    app.call(actor_for(account), change_password, PASSWORD, new, keep_session=here)

    assert app.call(ANONYMOUS, resolve_session, here) is not None
    assert app.call(ANONYMOUS, resolve_session, there) is None
    assert isinstance(_refusal(app, "kim", PASSWORD), LoginFailed)
    _login(app, "kim", new)

    issued = act(app, reset_password, "kim")
    assert app.call(ANONYMOUS, resolve_session, here) is None
    assert issued.password and issued.account.must_change_password
    assert actor_for(_login(app, "kim", issued.password)).roles == frozenset()


def test_a_disabled_account_loses_its_sessions_and_tokens(app: SafeEye) -> None:
    account = _login(app, _user(app).username)
    token = _session(app, account)
    api = app.call(actor_for(account), create_api_token, "export").token
    act(app, update_user, "kim", disabled=True)
    assert app.call(ANONYMOUS, resolve_session, token) is None
    assert app.call(ANONYMOUS, resolve_api_token, api) is None
    assert app.call(actor_for(account), list_sessions) == []
    act(app, update_user, "kim", disabled=False)
    assert app.call(ANONYMOUS, resolve_api_token, api) is not None  # tokens were only paused
    assert app.call(ANONYMOUS, resolve_session, token) is None  # sessions ended for good


# -- TOTP ------------------------------------------------------------------------------------


def test_totp_is_asked_for_accepted_once_and_a_replayed_or_wrong_code_is_refused(
    app: SafeEye,
) -> None:
    account = _login(app, _user(app).username)
    me = actor_for(account)
    enrolment = app.call(me, enrol_totp)
    assert enrolment.uri.startswith("otpauth://totp/safeeye:kim?secret=")
    totp = pyotp.TOTP(enrolment.secret)
    assert _login(app, "kim").totp_enabled is False  # not on before it is confirmed
    with pytest.raises(ValidationError):
        app.call(me, confirm_totp, "000000" if totp.now() != "000000" else "111111")
    app.call(
        me, confirm_totp, totp.at(utcnow(), counter_offset=-1)
    )  # the previous step: drift is allowed
    sealed = _row(app, "kim").totp_sealed
    assert sealed and enrolment.secret.encode() not in sealed

    assert isinstance(_refusal(app, "kim", PASSWORD), SecondFactorRequired)
    assert _login(app, "kim", code=totp.now()).totp_enabled
    with pytest.raises(LoginFailed) as replayed:
        _login(app, "kim", code=totp.now())  # the same code again
    assert replayed.value.code == "bad_totp"
    with pytest.raises(LoginFailed):
        _login(
            app, "kim", code=totp.at(utcnow(), counter_offset=-1)
        )  # an older step than the one used
    with pytest.raises(LoginFailed, match="wrong username or password"):
        _login(app, "kim", "wrong password!!", code=totp.at(utcnow(), counter_offset=1))

    with pytest.raises(LoginFailed):
        app.call(me, disable_totp, None, "not my password")
    assert app.call(me, disable_totp, None, PASSWORD).totp_enabled is False
    _age_attempts(app, 20)
    assert _login(app, "kim").username == "kim"


# -- API tokens ------------------------------------------------------------------------------


def test_api_tokens_are_shown_once_stored_as_digests_and_stop_when_revoked_or_expired(
    app: SafeEye,
) -> None:
    account = _user(app, "bot", Role.REVIEWER)
    made = act(app, create_api_token, "nightly export", "bot", expires_days=30)
    assert made.token.startswith("sey_") and made.prefix == made.token[:12]
    with app.db.session(read_only=True) as session:
        row = session.execute(select(ApiToken)).scalar_one()
        assert row.token_digest == digest(made.token)
        assert made.token not in json.dumps([str(getattr(row, c.key)) for c in row.__table__.c])
    resolved = app.call(ANONYMOUS, resolve_api_token, made.token)
    assert resolved == account and actor_for(resolved).roles == {Role.REVIEWER}
    assert app.call(ANONYMOUS, resolve_api_token, made.token[:-1] + "x") is None

    with app.db.session() as session:
        session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert app.call(ANONYMOUS, resolve_api_token, made.token) is None
    other = act(app, create_api_token, "other", "bot", expires_days=None)
    app.call(actor_for(account), revoke_api_token, other.id)  # one's own
    assert app.call(ANONYMOUS, resolve_api_token, other.token) is None
    statuses = {t.name: t.status for t in app.call(actor_for(account), list_api_tokens)}
    assert statuses == {"nightly export": "expired", "other": "revoked"}


# -- roles -----------------------------------------------------------------------------------


def test_only_administrators_manage_accounts_and_people_change_their_own_settings(
    app: SafeEye,
) -> None:
    counselor = actor_for(_user(app, "lee", Role.COUNSELOR))
    _user(app, "kim")
    with pytest.raises(PermissionDenied):
        app.call(counselor, create_user, "mallory", ["admin"])
    with pytest.raises(PermissionDenied):
        app.call(counselor, update_user, "lee", roles=["admin"])
    with pytest.raises(PermissionDenied):
        app.call(counselor, update_user, "kim", language="en")
    with pytest.raises(PermissionDenied):
        app.call(counselor, list_users)
    with pytest.raises(PermissionDenied):
        app.call(counselor, create_api_token, "mine", "kim")
    with pytest.raises(PermissionDenied):
        app.call(ANONYMOUS, list_api_tokens)

    mine = app.call(counselor, update_user, "lee", language="en", blur_level="medium")
    assert (mine.language, mine.blur_level) == ("en", "medium")
    assert app.call(counselor, create_api_token, "mine").username == "lee"
    assert actor_for(mine) == Actor("user:lee", frozenset({Role.COUNSELOR}))


def test_the_last_administrator_cannot_be_disabled_or_demoted(app: SafeEye) -> None:
    _user(app, "boss", Role.ADMIN)
    with pytest.raises(ConflictError, match="last enabled administrator"):
        act(app, update_user, "boss", disabled=True)
    with pytest.raises(ConflictError):
        act(app, update_user, "boss", roles=["auditor"])
    _user(app, "deputy", Role.ADMIN)
    assert act(app, update_user, "boss", roles=["auditor"]).roles == ("auditor",)


def test_the_first_administrator_is_made_once_and_must_change_the_password(app: SafeEye) -> None:
    first = app.call(Actor.system("serve"), ensure_first_admin)
    assert first is not None and first.username == "admin"
    assert app.call(Actor.system("serve"), ensure_first_admin) is None
    with pytest.raises(PermissionDenied):
        app.call(ANONYMOUS, ensure_first_admin)

    admin = _login(app, "admin", first.password)
    assert admin.must_change_password and actor_for(admin).roles == frozenset()
    with pytest.raises(PermissionDenied):
        app.call(actor_for(admin), list_users)
    changed = app.call(actor_for(admin), change_password, first.password, PASSWORD)
    assert not changed.must_change_password
    assert actor_for(changed).may(Role.ADMIN)
    assert [a.username for a in app.call(actor_for(changed), list_users)] == ["admin"]


# -- audit -----------------------------------------------------------------------------------


def test_every_change_is_audited_and_no_secret_reaches_the_audit_log(app: SafeEye) -> None:
    issued = act(app, create_user, "kim", ["reviewer"])
    assert issued.password
    account = _login(app, "kim", issued.password)
    me = actor_for(account)
    new = "a much better passphrase"
    app.call(me, change_password, issued.password, new)
    account = _login(app, "kim", new)
    me = actor_for(account)
    session_token = _session(app, account)
    enrolment = app.call(me, enrol_totp)
    app.call(me, confirm_totp, pyotp.TOTP(enrolment.secret).now())
    api = app.call(me, create_api_token, "script")
    app.call(me, revoke_api_token, api.id)
    app.call(ANONYMOUS, end_session, session_token)
    _refusal(app, "kim", "wrong password!!")
    _refusal(app, "hunter2-typed-as-a-name", PASSWORD)
    reset = act(app, reset_password, "kim")

    events = _audit(app)
    actions = [e.action for e in events if e.object_type in ("user", "web_session", "api_token")]
    assert actions == [
        "account.created",
        "account.login",
        "account.password_changed",
        "account.login",
        "account.session_started",
        "account.totp_enrolled",
        "account.totp_enabled",
        "account.token_created",
        "account.token_revoked",
        "account.logout",
        "account.login_failed",
        "account.password_reset",
    ]
    assert {e.actor for e in events if e.action in ("account.login", "account.logout")} == {
        "user:kim"
    }
    written = json.dumps([[e.actor, e.object_id, e.details] for e in events])
    secrets = [issued.password, new, PASSWORD, enrolment.secret, api.token, session_token]
    secrets += [reset.password or "", "hunter2"]
    assert not [s for s in secrets if s and s in written]
    with app.db.session(read_only=True) as session:
        assert app.audit.verify(session).ok


# -- the commands ----------------------------------------------------------------------------


def _cli(app: SafeEye, monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "") -> Any:
    monkeypatch.setitem(cli._state, "app", app)
    result = CliRunner().invoke(cli.app, ["user", *args, "--json"], input=stdin)
    return result.exit_code, json.loads(result.stdout)


def test_the_user_commands_speak_json(app: SafeEye, monkeypatch: pytest.MonkeyPatch) -> None:
    code, added = _cli(app, monkeypatch, "add", "kim", "--role", "reviewer", "-r", "counselor")
    assert code == 0 and added["roles"] == ["counselor", "reviewer"]
    assert added["must_change_password"] and len(added["one_time_password"]) == 23
    _login(app, "kim", added["one_time_password"])
    code, chosen = _cli(
        app, monkeypatch, "add", "bot", "-r", "auditor", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert code == 0 and chosen["one_time_password"] is None
    _login(app, "bot")
    code, error = _cli(app, monkeypatch, "add", "kim", "-r", "reviewer")
    assert code == 2 and error["error"].startswith("conflict:")

    code, listed = _cli(app, monkeypatch, "list")
    assert [a["username"] for a in listed] == ["bot", "kim"]
    code, reset = _cli(app, monkeypatch, "passwd", "bot")
    assert code == 0 and reset["username"] == "bot"
    _login(app, "bot", reset["one_time_password"])
    code, disabled = _cli(app, monkeypatch, "disable", "kim")
    assert code == 0 and disabled["disabled"] is True
    code, enabled = _cli(app, monkeypatch, "enable", "kim")
    assert code == 0 and enabled["disabled"] is False

    code, made = _cli(app, monkeypatch, "token", "create", "bot", "export", "--days", "7")
    assert code == 0 and made["username"] == "bot"
    assert app.call(ANONYMOUS, resolve_api_token, made["token"]) is not None
    code, tokens = _cli(app, monkeypatch, "token", "list", "bot")
    assert [(t["id"], t["status"]) for t in tokens] == [(made["id"], "active")]
    assert "token" not in tokens[0]
    code, revoked = _cli(app, monkeypatch, "token", "revoke", str(made["id"]))
    assert code == 0 and revoked["status"] == "revoked"
    assert app.call(ANONYMOUS, resolve_api_token, made["token"]) is None
    assert TESTER.name == "test" and _audit(app)[-1].actor == "test"
