"""``safeeye evidence``: build a sighting's signed evidence package, export it, verify it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from safeeye.commands.common import JsonOpt, call, emit, say

evidence_app = typer.Typer(
    no_args_is_help=True,
    help="Evidence packages: a sighting's signed manifest, page (WARC) and blurred screenshot.",
)


@evidence_app.command("build")
def evidence_build(
    sighting_id: Annotated[int, typer.Argument(help="The sighting (see `safeeye sightings`).")],
    new: Annotated[
        bool, typer.Option("--new", help="Build a new package even if the sighting has one.")
    ] = False,
    screenshot: Annotated[
        bool, typer.Option("--screenshot/--no-screenshot", help="Take a screenshot of the page.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Build (or reuse) the sighting's evidence package."""
    from safeeye.takedown.evidence import build_package

    summary = call(as_json, build_package, sighting_id, screenshot=screenshot, new=new)
    if as_json:
        emit(asdict(summary))
        return
    state = "reused" if summary.reused else "built"
    say(f"evidence package {summary.package_id} {state} for sighting {summary.sighting_id}")
    say(f"  manifest sha256 {summary.manifest_sha256}")
    say(f"  files: {', '.join(summary.files) or 'none besides the manifest'}")
    if summary.screenshot_reason:
        say(("  no screenshot: ", "yellow"), summary.screenshot_reason)


@evidence_app.command("export")
def evidence_export(
    package_id: Annotated[int, typer.Argument(help="The package (from `safeeye evidence build`).")],
    output: Annotated[Path, typer.Option("--output", help="An empty (or new) folder.")],
    as_json: JsonOpt = False,
) -> None:
    """Write the package into a folder that `safeeye evidence verify` checks offline."""
    from safeeye.takedown.evidence import export_package

    summary = call(as_json, export_package, package_id, output)
    if as_json:
        emit(asdict(summary))
        return
    say(f"evidence package {summary.package_id} written to {summary.folder}")


@evidence_app.command("verify")
def evidence_verify(
    folder: Annotated[Path, typer.Argument(help="An exported package folder.")],
    public_key: Annotated[
        str | None,
        typer.Option("--public-key", help="The base64 Ed25519 key you trust to have signed it."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a package with nothing but its folder: the signature over the manifest and every
    file's SHA-256. Exit status 1 when any check fails."""
    from safeeye.takedown.package import verify_package

    report = verify_package(folder, public_key)
    if as_json:
        emit(report.as_json())
    else:
        for check in report.checks:
            mark = ("ok  ", "green") if check.ok else ("FAIL", "red")
            say(mark, f" {check.name}", *([f": {check.detail}"] if check.detail else []))
        for name in report.unlisted:
            say(("note", "yellow"), f" {name} is not part of the signed package")
        if report.ok and report.trusted is None:
            say(("note", "yellow"), f" signed by {report.public_key}: compare it with --public-key")
        say(("verified", "bold green") if report.ok else ("NOT VERIFIED", "bold red"))
    if not report.ok:
        raise typer.Exit(1)


@evidence_app.command("key")
def evidence_key(as_json: JsonOpt = False) -> None:
    """Print the public key that signs this installation's packages (give it to auditors)."""
    from safeeye.takedown.evidence import evidence_public_key

    key = call(as_json, evidence_public_key, read_only=True)
    if as_json:
        emit({"public_key": key, "algorithm": "Ed25519"})
    else:
        typer.echo(key)
