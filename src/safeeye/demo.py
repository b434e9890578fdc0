"""The demo job: a demo case from the fixture photos, then a scan of fixture photos and video."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, create_case, get_case
from safeeye.errors import NotFoundError
from safeeye.pipeline.scan import Scanner

DEMO_CASE = "DEMO-0001"
FACE_REFERENCES = ("faces/lin-manuel-miranda.png", "faces/obama.jpg")
SCAN = (
    "video/short_hamilton_clip.mp4",
    "faces/obama2.jpg",
    "faces/obama3.jpg",
    "faces/biden.jpg",
    "faces/two_people.jpg",
)


def find_fixtures(start: Path | None = None) -> Path:
    """The ``tests/fixtures`` folder of the checkout the command runs in."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "tests" / "fixtures"
        if (candidate / FACE_REFERENCES[0]).exists():
            return candidate
    raise NotFoundError("tests/fixtures not found: run the demo from the safeeye checkout")


def run_demo(app: SafeEye, console: Console | None = None) -> dict[str, Any]:
    """Register (once) the demo case and scan the demo inputs; returns what was found."""
    fixtures = find_fixtures()
    with app.db.session() as session:
        try:
            get_case(session, DEMO_CASE)
            exists = True
        except NotFoundError:
            exists = False
    if not exists:
        create_case(app, DEMO_CASE, consent_basis="demo: public-figure test photos")
        add_faces(app, DEMO_CASE, [fixtures / p for p in FACE_REFERENCES])
    scanner = Scanner(app)
    try:
        results = scanner.scan_paths([fixtures / p for p in SCAN])
    finally:
        scanner.close()
    summary = {"case": DEMO_CASE, "results": [r.to_json() for r in results]}
    if console is not None:
        table = Table("scanned", "type", "faces", "sexual", "matches (case:kind@distance, seconds)")
        for r in results:
            matches = "; ".join(
                f"{m.case}:{m.kind}@{m.distance:.2f} t={','.join(f'{t:g}' for t in m.frames[:12])}"
                + ("…" if len(m.frames) > 12 else "")
                for m in r.matches
            )
            table.add_row(
                Path(r.input).name,
                r.media_type or "-",
                str(r.faces),
                f"{r.sexual_score:.2f}",
                matches or (r.error or "none"),
            )
        console.print(
            f"demo case [bold]{DEMO_CASE}[/bold]: face references "
            + ", ".join(Path(p).name for p in FACE_REFERENCES)
        )
        console.print(table)
        console.print(f"data in {app.settings.data_dir.resolve()}; audit: safeeye audit verify")
    return summary
