"""``safeeye user``: accounts of the web workbench, their passwords and API tokens."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from safeeye.commands.common import JsonOpt, call, emit, plain, say

user_app = typer.Typer(
    no_args_is_help=True, help="Accounts: who logs in to the workbench, and with which roles."
)
token_app = typer.Typer(no_args_is_help=True, help="API tokens for automation.")
user_app.add_typer(token_app, name="token")

Username = Annotated[str, typer.Argument(help="The account's username.")]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of stdin (default: make a one-time "
        "password, shown once, that must be changed at first login).",
    ),
]


def _password_from_stdin(wanted: bool) -> str | None:
    return sys.stdin.readline().rstrip("\r\n") if wanted else None


def _show_password(username: str, password: str | None) -> None:
    if password is not None:
        say("one-time password for ", (username, "bold"), ": ", (password, "bold"))
        say("it is shown only now; it must be changed at the first login")


@user_app.command("add")
def user_add(
    username: Username,
    role: Annotated[
        list[str],
        typer.Option("--role", "-r", help="admin, counselor, reviewer or auditor (repeat)."),
    ],
    display_name: Annotated[str, typer.Option(help="The name shown in the workbench.")] = "",
    language: Annotated[str, typer.Option(help="The workbench's language: ko or en.")] = "ko",
    password_stdin: PasswordStdin = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an account with its roles."""
    from safeeye.accounts.users import create_user

    password = _password_from_stdin(password_stdin)
    issued = call(
        as_json,
        create_user,
        username,
        role,
        display_name=display_name,
        password=password,
        language=language,
    )
    if as_json:
        emit({**asdict(issued.account), "one_time_password": issued.password})
        return
    account = issued.account
    say("account ", (account.username, "bold"), f" created ({', '.join(account.roles)})")
    _show_password(account.username, issued.password)


@user_app.command("list")
def user_list(as_json: JsonOpt = False) -> None:
    """Every account with its roles and state."""
    from safeeye.accounts.users import list_users

    accounts = call(as_json, list_users, read_only=True)
    if as_json:
        emit([asdict(a) for a in accounts])
        return
    table = Table("username", "name", "roles", "state", "2FA", "last login")
    for a in accounts:
        state = (
            "disabled" if a.disabled else "must change password" if a.must_change_password else ""
        )
        table.add_row(
            plain(a.username),
            plain(a.display_name),
            ", ".join(a.roles),
            state or "active",
            "on" if a.totp_enabled else "-",
            (a.last_login_at or "-")[:19],
        )
    Console().print(table)


@user_app.command("passwd")
def user_passwd(
    username: Username, password_stdin: PasswordStdin = False, as_json: JsonOpt = False
) -> None:
    """Reset an account's password (it must be changed at the next login); its sessions end."""
    from safeeye.accounts.users import reset_password

    password = _password_from_stdin(password_stdin)
    issued = call(as_json, reset_password, username, password)
    if as_json:
        emit({"username": issued.account.username, "one_time_password": issued.password})
        return
    say("password of ", (issued.account.username, "bold"), " reset; its sessions ended")
    _show_password(issued.account.username, issued.password)


def _set_disabled(username: str, disabled: bool, as_json: bool) -> None:
    from safeeye.accounts.users import update_user

    account = call(as_json, update_user, username, disabled=disabled)
    if as_json:
        emit(asdict(account))
    else:
        say("account ", (account.username, "bold"), " disabled" if disabled else " enabled")


@user_app.command("disable")
def user_disable(username: Username, as_json: JsonOpt = False) -> None:
    """Disable an account: it cannot log in, its sessions end, its API tokens stop working."""
    _set_disabled(username, True, as_json)


@user_app.command("enable")
def user_enable(username: Username, as_json: JsonOpt = False) -> None:
    """Enable a disabled account again."""
    _set_disabled(username, False, as_json)


@token_app.command("create")
def token_create(
    username: Username,
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. 'nightly export'.")],
    days: Annotated[float | None, typer.Option(help="Days until it expires (default 90).")] = 90.0,
    no_expiry: Annotated[bool, typer.Option("--no-expiry", help="Valid until revoked.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an API token acting as USERNAME; the token is printed once (on stdout)."""
    from safeeye.accounts.tokens import create_api_token

    made = call(as_json, create_api_token, name, username, expires_days=None if no_expiry else days)
    if as_json:
        emit(asdict(made))
        return
    say(f"token {made.id} for ", (made.username, "bold"), f" expires {made.expires_at or 'never'}")
    say("it is shown only now; keep it in the automation's secret store:")
    sys.stdout.write(made.token + "\n")


@token_app.command("list")
def token_list(
    username: Annotated[
        str | None, typer.Argument(help="Only this account's tokens (default: all).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """API tokens (never the tokens themselves: their first characters)."""
    from safeeye.accounts.tokens import list_api_tokens

    tokens = call(as_json, list_api_tokens, username, read_only=True)
    if as_json:
        emit([asdict(t) for t in tokens])
        return
    table = Table("id", "user", "name", "starts with", "status", "expires", "last used")
    for t in tokens:
        table.add_row(
            str(t.id),
            plain(t.username),
            plain(t.name),
            plain(t.prefix + "…"),
            t.status,
            (t.expires_at or "never")[:19],
            (t.last_used_at or "-")[:19],
        )
    Console().print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see `user token list`).")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke an API token: it stops working at once."""
    from safeeye.accounts.tokens import revoke_api_token

    summary = call(as_json, revoke_api_token, token_id)
    emit(asdict(summary)) if as_json else say(f"token {summary.id} revoked")
