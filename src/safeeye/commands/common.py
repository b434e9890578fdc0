"""What every command shares: the service (set up on first use), the console's actor, one unit
of work per command, and printing that never reads outside text as markup."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from safeeye.config import Settings
from safeeye.errors import SafeEyeError

console = Console(stderr=True)
T = TypeVar("T")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
#: The command's settings, its service and what ``init`` did (tests put an app here).
state: dict[str, Any] = {}


def app_for() -> Any:
    """The service, set up on first use (the embedded defaults need no separate step)."""
    from safeeye.app import SafeEye

    if "app" not in state:
        safe = SafeEye(state.get("settings") or Settings.load())
        try:
            state["init"] = safe.init()
        except SafeEyeError as exc:
            fail(exc, False)
        state["app"] = safe
    return state["app"]


def actor() -> Any:
    """Whoever runs the command on this machine."""
    from safeeye.app import console_actor

    return console_actor(app_for().settings)


def call(
    as_json: bool, service: Callable[..., T], *args: Any, read_only: bool = False, **kwargs: Any
) -> T:
    """Run a domain service in one unit of work as the console's actor; a typed error is
    printed and ends the command (exit 2)."""
    try:
        with app_for().work(actor(), read_only=read_only) as work:
            return service(work, *args, **kwargs)
    except SafeEyeError as exc:
        fail(exc, as_json)


def visible(value: object) -> str:
    """Text from outside with its control characters (newlines, terminal codes) spelled out."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(value)
    )


def plain(value: object) -> Text:
    """Text from outside (a URL, an error, a file name, a server's words) as Rich prints it
    literally: never read as markup or emoji codes, no control characters."""
    return Text(visible(value))


def say(*parts: str | tuple[str, str]) -> None:
    """Print a line on stderr: ``str`` parts literally (``plain``), ``(text, style)`` styled."""
    console.print(
        Text.assemble(*(plain(part) if isinstance(part, str) else part for part in parts))
    )


def emit(data: Any) -> None:
    """Print ``data`` as JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def fail(exc: SafeEyeError, as_json: bool) -> NoReturn:
    """Print a typed error (as JSON with ``--json``) and end the command with exit status 2."""
    if as_json:
        emit({"error": exc.as_text()})
    else:
        say(("error", "red"), " ", exc.as_text())
    raise typer.Exit(2)
