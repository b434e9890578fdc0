"""PDF documents whose text, Korean included, is drawn with an embedded Noto CJK font."""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.subset import Options, Subsetter
from fontTools.ttLib import TTFont, TTLibError, newTable
from fpdf import FPDF

from safeeye.errors import ConfigError

#: The family name documents from ``new_document`` draw their text with.
FAMILY = "noto"
#: Where Debian (fonts-noto-cjk) and other distributions put Noto Sans CJK.
FONT_DIRS = (
    Path("/usr/share/fonts/opentype/noto"),
    Path("/usr/share/fonts/opentype/noto-cjk"),
    Path("/usr/share/fonts/noto-cjk"),
    Path("/usr/share/fonts/google-noto-cjk"),
    Path("/usr/share/fonts/truetype/noto"),
)
FONT_FILES = (
    "NotoSansCJK-Regular.ttc",
    "NotoSansCJKkr-Regular.otf",
    "NotoSansKR-Regular.otf",
    "NotoSansKR-Regular.ttf",
)
_MAX_FACES = 32


@dataclass(frozen=True)
class FontFace:
    """One face of a font file (a collection holds several)."""

    path: Path
    number: int = 0


def locate_font(configured: Path | None = None) -> FontFace:
    """The font to draw with: ``configured`` if given, else Noto Sans CJK where the system
    keeps it; in a collection, its Korean face. ``ConfigError`` when there is none."""
    candidates = [configured] if configured else [d / f for d in FONT_DIRS for f in FONT_FILES]
    for path in candidates:
        if path.is_file():
            return FontFace(path, _korean_face(path))
    if configured:
        raise ConfigError(f"the PDF font file {configured} does not exist")
    raise ConfigError(
        "no font with Korean glyphs for PDF reports: install Debian's fonts-noto-cjk "
        "(scripts/setup does) or name one in SAFEEYE_PDF_FONT_FILE"
    )


def _korean_face(path: Path) -> int:
    """The face of a collection whose family is the Korean one (0 for a single font)."""
    if path.suffix.lower() not in (".ttc", ".otc"):
        return 0
    for number in range(_MAX_FACES):
        try:
            font = TTFont(path, fontNumber=number, lazy=True)
        except (TTLibError, IndexError):
            break
        family = font["name"].getDebugName(1) or ""
        font.close()
        if family.endswith((" KR", " Korean")):
            return number
    return 0


def truetype_subset(text: str, face: FontFace) -> bytes:
    """A TrueType font with the glyphs of ``text``'s characters from ``face``.

    Noto CJK has CFF outlines, which fpdf2 embeds with an encoding that common text
    extractors cannot map back to Unicode; the same glyphs as TrueType outlines are embedded
    with the Identity encoding every reader understands, and the subset keeps files small.
    """
    try:
        font = TTFont(face.path, fontNumber=face.number, lazy=True)
    except (TTLibError, OSError, IndexError) as exc:
        raise ConfigError(f"cannot read the PDF font {face.path.name}: {exc}") from exc
    options = Options()
    options.layout_features = []
    options.notdef_outline = True
    options.hinting = False
    options.desubroutinize = True
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "BASE", "VORG", "vhea", "vmtx", "JSTF"]
    subsetter = Subsetter(options)
    subsetter.populate(text="".join(sorted(set(text))))
    subsetter.subset(font)
    if "glyf" not in font:
        _cff_to_glyf(font)
    out = BytesIO()
    font.save(out)
    font.close()
    return out.getvalue()


def _cff_to_glyf(font: TTFont) -> None:
    """Replace the CFF outlines of ``font`` by quadratic TrueType ones, in place."""
    order = font.getGlyphOrder()
    glyphs = font.getGlyphSet()
    glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyphs)
        # CFF contours run counter-clockwise, TrueType ones clockwise.
        glyphs[name].draw(Cu2QuPen(pen, max_err=1.0, reverse_direction=True))
        glyf.glyphs[name] = pen.glyph()
    for table in ("CFF ", "CFF2", "VORG"):
        if table in font:
            del font[table]
    font["glyf"] = glyf
    font["loca"] = newTable("loca")
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    for name in (
        "maxZones",
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
    ):
        setattr(maxp, name, 0)
    maxp.maxZones = 1
    font["head"].glyphDataFormat = 0
    font["post"].formatType = 3.0
    font.sfntVersion = "\x00\x01\x00\x00"


def new_document(text: str, workdir: Path, font_file: Path | None = None) -> FPDF:
    """An A4 document whose family ``FAMILY`` draws every character of ``text`` (the whole
    text the document will hold). The font is written into ``workdir``, which must outlive the
    document's ``output()``."""
    face = locate_font(font_file)
    path = workdir / "safeeye-noto.ttf"
    path.write_bytes(truetype_subset(text, face))
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font(FAMILY, fname=path)
    pdf.set_font(FAMILY, size=10)
    return pdf
