"""The demo job: demo cases from the fixture photos, then a scan of fixture photos, the fixture
video and a re-uploaded (mirrored, captioned) copy of a known photo."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageOps
from rich.console import Console
from rich.table import Table

from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, add_known, create_case, get_case
from safeeye.errors import NotFoundError
from safeeye.pipeline.scan import Scanner
from safeeye.work import Actor, Work

#: case code -> (face reference photos, known media), paths under tests/fixtures
DEMO_CASES = {
    "DEMO-LMM": (("faces/lin-manuel-miranda.png",), ()),
    "DEMO-OBAMA": (("faces/obama.jpg",), ("faces/obama2.jpg",)),
}
SCAN = (
    "video/short_hamilton_clip.mp4",
    "faces/obama3.jpg",
    "faces/biden.jpg",
    "faces/two_people.jpg",
)


def find_fixtures(start: Path | None = None) -> Path:
    """The ``tests/fixtures`` folder of the checkout the command runs in."""
    for here in (start or Path.cwd(), Path(__file__).parent):  # the checkout, or the source's
        here = here.resolve()
        for folder in (here, *here.parents):
            candidate = folder / "tests" / "fixtures"
            if (candidate / SCAN[0]).exists():
                return candidate
    raise NotFoundError("tests/fixtures not found: run the demo from the safeeye checkout")


def reupload_of(known: Path, folder: Path) -> Path:
    """What an uploader makes of a photo: mirrored, with a caption bar, re-encoded."""
    image = ImageOps.mirror(ImageOps.exif_transpose(Image.open(known)).convert("RGB"))
    bar = image.height // 7
    out = Image.new("RGB", (image.width, image.height + bar), "white")
    out.paste(image, (0, 0))
    ImageDraw.Draw(out).text((12, image.height + bar // 3), "look who it is", fill="black")
    path = folder / "reupload-mirrored-captioned.jpg"
    out.save(path, quality=60)
    return path


def _register(work: Work, fixtures: Path) -> None:
    for code, (faces, known) in DEMO_CASES.items():
        try:
            get_case(work.session, code)
            continue
        except NotFoundError:
            pass
        create_case(work, code, consent_basis="demo: public-figure test photos")
        add_faces(work, code, [fixtures / p for p in faces])
        add_known(work, code, [fixtures / p for p in known])


def run_demo(app: SafeEye, actor: Actor, console: Console | None = None) -> dict[str, Any]:
    """Register (once) the demo cases and scan the demo inputs; returns what was found."""
    fixtures = find_fixtures()
    app.call(actor, _register, fixtures)
    scanner = Scanner(app, actor=actor)
    with tempfile.TemporaryDirectory(prefix="safeeye-demo-") as tmp:
        inputs = [fixtures / p for p in SCAN]
        inputs.append(reupload_of(fixtures / DEMO_CASES["DEMO-OBAMA"][1][0], Path(tmp)))
        try:
            results = scanner.scan_paths(inputs)
        finally:
            scanner.close()
    summary = {"cases": list(DEMO_CASES), "results": [r.to_json() for r in results]}
    if console is not None:
        table = Table(
            "scanned", "type", "faces", "sexual", "matches (case kind distance @ seconds)"
        )
        for r in results:
            matches = "\n".join(
                f"{m.case} {m.kind} {m.distance:.2f} @ "
                + ",".join(f"{t:g}" for t in m.frames[:8])
                + ("…" if len(m.frames) > 8 else "")
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
            "demo cases: "
            + ", ".join(
                f"{code} (faces: {', '.join(Path(p).name for p in faces)}"
                + (f"; known: {', '.join(Path(p).name for p in known)})" if known else ")")
                for code, (faces, known) in DEMO_CASES.items()
            )
        )
        console.print(table)
        console.print(f"data in {app.settings.data_dir.resolve()}; audit: safeeye audit verify")
    return summary
