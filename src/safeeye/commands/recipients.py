"""``safeeye recipients``: the directory of who receives deletion requests."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table

from safeeye.commands.common import JsonOpt, call, console, emit, plain, say

recipients_app = typer.Typer(
    no_args_is_help=True,
    help="Recipients: the regulator, platforms, hosts and hash-sharing programs notices go to.",
)

CoversOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--covers",
        help="A domain (covers its subdomains) or a CIDR network it answers for; repeat it, or "
        "separate with commas.",
    ),
]
LanguageOpt = Annotated[
    list[str] | None,
    typer.Option("--language", help="ISO 639-1 code of a language it reads (repeat: ko, en)."),
]
RouteOpt = Annotated[
    list[str] | None,
    typer.Option("--legal-route", help="A legal route notices cite (repeat), e.g. kr_tba_22_5."),
]


@recipients_app.command("list")
def recipients_list(
    kind: Annotated[str | None, typer.Option(help="Only this kind (platform, search...).")] = None,
    enabled_only: Annotated[bool, typer.Option("--enabled", help="Only the enabled ones.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The recipients directory."""
    from safeeye.takedown.recipients import list_recipients

    entries = call(
        as_json, list_recipients, kind=kind, enabled=True if enabled_only else None, read_only=True
    )
    if as_json:
        emit([asdict(e) for e in entries])
        return
    table = Table("key", "name", "kind", "connector", "address", "deadline", "origin")
    for e in entries:
        table.add_row(
            plain(e.key + ("" if e.enabled else " (disabled)")),
            plain(e.name),
            plain(e.kind),
            plain(e.connector),
            plain(e.address or "-"),
            f"{e.deadline_hours:g} h",
            plain(e.origin),
        )
    console.print(table)


@recipients_app.command("show")
def recipients_show(
    recipient: Annotated[str, typer.Argument(help="The recipient's key or id.")],
    as_json: JsonOpt = False,
) -> None:
    """One recipient, with what it covers and where it escalates."""
    from safeeye.takedown.recipients import show_recipient

    entry = call(as_json, show_recipient, recipient, read_only=True)
    if as_json:
        emit(asdict(entry))
        return
    for label, value in asdict(entry).items():
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value) or "-"
        say((f"{label:>14} ", "bold"), "-" if value is None else str(value))


@recipients_app.command("add")
def recipients_add(
    name: Annotated[str, typer.Argument(help="Its name, as notices address it.")],
    connector: Annotated[str, typer.Option(help="api, email, stopncii or export.")],
    kind: Annotated[
        str, typer.Option(help="regulator, platform, search, messaging, image_host, hosting...")
    ] = "platform",
    address: Annotated[
        str | None,
        typer.Option(help="An e-mail for email; an https URL for api (endpoint) or export (form)."),
    ] = None,
    covers: CoversOpt = None,
    language: LanguageOpt = None,
    deadline_hours: Annotated[
        float, typer.Option("--deadline-hours", help="Hours it has to remove an item.")
    ] = 24.0,
    jurisdiction: Annotated[
        str | None, typer.Option(help="Two-letter country code (or EU) of its law.")
    ] = None,
    legal_route: RouteOpt = None,
    escalates_to: Annotated[
        str | None, typer.Option("--escalates-to", help="Key of the next step up the ladder.")
    ] = None,
    key: Annotated[str | None, typer.Option(help="Its key (default: from the name).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a recipient: a name, the domains or networks it covers, a connector and its address,
    languages and a deadline."""
    from safeeye.takedown.recipients import add_recipient

    entry = call(
        as_json,
        add_recipient,
        name,
        kind=kind,
        connector=connector,
        address=address,
        covers=tuple(covers or ()),
        languages=tuple(language or ("en",)),
        deadline_hours=deadline_hours,
        jurisdiction=jurisdiction,
        legal_routes=tuple(legal_route or ()),
        escalates_to=escalates_to,
        key=key,
    )
    _done(entry, "added", as_json)


@recipients_app.command("update")
def recipients_update(
    recipient: Annotated[str, typer.Argument(help="The recipient's key or id.")],
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    kind: Annotated[str | None, typer.Option(help="A new kind.")] = None,
    connector: Annotated[str | None, typer.Option(help="api, email, stopncii or export.")] = None,
    address: Annotated[str | None, typer.Option(help="A new address ('' clears it).")] = None,
    covers: CoversOpt = None,
    language: LanguageOpt = None,
    deadline_hours: Annotated[
        float | None, typer.Option("--deadline-hours", help="Hours it has to remove an item.")
    ] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="Country code ('' clears it).")] = None,
    legal_route: RouteOpt = None,
    escalates_to: Annotated[
        str | None, typer.Option("--escalates-to", help="Key of the next step ('' clears it).")
    ] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Send it notices, or not.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a recipient (a shipped one becomes yours: later defaults leave it alone)."""
    from safeeye.takedown.recipients import update_recipient

    entry = call(
        as_json,
        update_recipient,
        recipient,
        name=name,
        kind=kind,
        connector=connector,
        address=address,
        covers=tuple(covers) if covers else None,
        languages=tuple(language) if language else None,
        deadline_hours=deadline_hours,
        jurisdiction=jurisdiction,
        legal_routes=tuple(legal_route) if legal_route else None,
        escalates_to=escalates_to,
        enabled=enabled,
    )
    _done(entry, "updated", as_json)


@recipients_app.command("find")
def recipients_find(
    url: Annotated[str, typer.Argument(help="The URL of an item (or a sighting id).")],
    ip: Annotated[str | None, typer.Option("--ip", help="The server address it came from.")] = None,
    jurisdiction: Annotated[str, typer.Option(help="The victim's regulator's country.")] = "KR",
    as_json: JsonOpt = False,
) -> None:
    """Who would be asked about an item, in order (asks RDAP for hosts with no entry)."""
    from safeeye.takedown.recipients import find_recipients

    target: Any = int(url) if url.isdigit() else url
    ladder = call(as_json, find_recipients, target, ip, jurisdiction=jurisdiction)
    if as_json:
        emit({"steps": [asdict(s) for s in ladder.steps], "gaps": list(ladder.gaps)})
        return
    for number, step in enumerate(ladder.steps, 1):
        say(
            f"{number}. ",
            (step.key, "bold"),
            f"  {step.name}  ({step.connector}: ",
            step.address or "no address",
            ")",
        )
    for gap in ladder.gaps:
        say(("  missing ", "yellow"), gap)


def _done(entry: Any, verb: str, as_json: bool) -> None:
    if as_json:
        emit(asdict(entry))
    else:
        say("recipient ", (entry.key, "bold"), f" {verb}")
