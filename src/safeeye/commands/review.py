"""``safeeye review``: decide on matches; ``safeeye case allow``: the victim's own places."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from safeeye.commands.common import JsonOpt, call, emit, plain, say
from safeeye.review.decisions import PlaceKind, RejectReason
from safeeye.takedown.model import Category

review_app = typer.Typer(
    no_args_is_help=True, help="Review: confirm, reject or escalate what the scanner matched."
)
MatchIds = Annotated[list[int], typer.Argument(help="Match ids (see `safeeye review list`).")]
Note = Annotated[str | None, typer.Option(help="What the reviewer wants on record (sealed).")]


@review_app.command("list")
def review_list(
    case: Annotated[str | None, typer.Option(help="Only this case (its code).")] = None,
    status: Annotated[
        str, typer.Option(help="pending, escalated, confirmed, rejected.")
    ] = "pending",
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """The matches waiting for a decision (newest first)."""
    from safeeye.review.matches import list_matches

    found = call(as_json, list_matches, case=case, status=status, limit=limit, read_only=True)
    if as_json:
        emit([asdict(m) for m in found])
        return
    table = Table("match", "case", "kind", "distance", "type", "first seen", "where")
    for m in found:
        where = m.sightings[0].location if m.sightings else "-"
        table.add_row(
            str(m.match_id),
            plain(m.case),
            m.kind,
            f"{m.distance:.3g} / {m.threshold:g}" if m.threshold else f"{m.distance:.3g}",
            plain(m.media_type or "-"),
            (m.first_seen or "-")[:19],
            plain(where),
        )
    Console().print(table)


def _print(decisions: list, as_json: bool) -> None:  # type: ignore[type-arg]
    if as_json:
        emit([asdict(d) for d in decisions])
        return
    for d in decisions:
        why = f" ({d.reason})" if d.reason else ""
        say(f"match {d.match_id} ({d.case}): {d.decision}{why}")


@review_app.command("confirm")
def review_confirm(
    match_ids: MatchIds,
    note: Note = None,
    category: Annotated[
        Category, typer.Option(help="illegally_filmed, synthetic (a deepfake), or minor.")
    ] = Category.ILLEGALLY_FILMED,
    as_json: JsonOpt = False,
) -> None:
    """These matches show the victim: they may become deletion requests."""
    from safeeye.review.decisions import confirm

    _print(call(as_json, confirm, match_ids, note, category), as_json)


@review_app.command("reject")
def review_reject(
    match_ids: MatchIds,
    reason: Annotated[
        RejectReason, typer.Option(help="Why: not_victim, not_sexual, own_publication, other.")
    ],
    note: Note = None,
    as_json: JsonOpt = False,
) -> None:
    """These matches are not reported."""
    from safeeye.review.decisions import reject

    _print(call(as_json, reject, match_ids, reason, note), as_json)


@review_app.command("escalate")
def review_escalate(match_ids: MatchIds, note: Note = None, as_json: JsonOpt = False) -> None:
    """These matches need a second look."""
    from safeeye.review.decisions import escalate

    _print(call(as_json, escalate, match_ids, note), as_json)


@review_app.command("reopen")
def review_reopen(match_ids: MatchIds, note: Note = None, as_json: JsonOpt = False) -> None:
    """Take a decision back: the matches wait again."""
    from safeeye.review.decisions import reopen

    _print(call(as_json, reopen, match_ids, note), as_json)


def allow(
    code: str,
    pattern: Annotated[str, typer.Argument(help="A URL, a host or an account name.")],
    kind: Annotated[PlaceKind, typer.Option(help="url (and below it), host, account.")] = (
        PlaceKind.URL
    ),
    as_json: JsonOpt = False,
) -> None:
    """Never report what is seen at the victim's own account or site."""
    from safeeye.review.decisions import allow_place

    place = call(as_json, allow_place, code, kind, pattern)
    emit(asdict(place)) if as_json else say(
        f"allowed place {place.id}: {place.kind} {place.pattern}"
    )


def allowlist(code: str, as_json: JsonOpt = False) -> None:
    """The victim's own places for case CODE."""
    from safeeye.review.decisions import list_allowed

    places = call(as_json, list_allowed, code, read_only=True)
    if as_json:
        emit([asdict(p) for p in places])
        return
    for p in places:
        say(f"{p.id}: {p.kind} {p.pattern}")


def disallow(code: str, place_id: int, as_json: JsonOpt = False) -> None:
    """Remove an allowed place from case CODE."""
    from safeeye.review.decisions import remove_allowed

    call(as_json, remove_allowed, code, place_id)
    emit({"removed": place_id}) if as_json else say(f"allowed place {place_id} removed")
