"""Notices as files an officer files by hand: CSV and XLSX sheets and a PDF evidence report."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from safeeye.errors import ConfigError
from safeeye.files import write_atomically
from safeeye.pdf import new_document
from safeeye.takedown.connectors.base import Connector, ConnectorError, register
from safeeye.takedown.model import Category, ItemAck, OutgoingNotice, RecipientInfo, SendResult

#: The sheet's columns: one row per notice, everything a valid notice carries.
COLUMNS = (
    "reference",
    "recipient",
    "category",
    "urls",
    "page_url",
    "first_seen",
    "last_seen",
    "media_type",
    "sha256",
    "md5",
    "pdq",
    "legal_basis",
    "language",
    "description",
    "evidence_package",
    "evidence_manifest_sha256",
    "contact",
    "subject",
    "cites",
)
CATEGORY_KO = {
    Category.ILLEGALLY_FILMED: "불법촬영물",
    Category.SYNTHETIC: "허위영상물",
    Category.MINOR: "아동·청소년성착취물",
}
#: A cell a spreadsheet would run as a formula starts with one of these.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def notice_row(recipient: RecipientInfo, notice: OutgoingNotice) -> dict[str, str]:
    """One notice as a sheet row (every value text)."""
    facts, rendered = notice.facts, notice.rendered
    evidence = facts.evidence
    requester = facts.requester
    return {
        "reference": notice.idempotency_key,
        "recipient": f"{recipient.name} ({recipient.key})",
        "category": str(facts.category),
        "urls": "\n".join(facts.urls),
        "page_url": facts.page_url or "",
        "first_seen": facts.first_seen,
        "last_seen": facts.last_seen,
        "media_type": facts.media_type,
        "sha256": facts.sha256,
        "md5": facts.md5,
        "pdq": facts.pdq or "",
        "legal_basis": "; ".join(rendered.legal_basis),
        "language": rendered.language,
        "description": facts.description,
        "evidence_package": str(evidence.package_id) if evidence else "",
        "evidence_manifest_sha256": evidence.manifest_sha256 if evidence else "",
        "contact": "; ".join(
            part for part in (requester.organisation, requester.email, requester.phone) if part
        ),
        "subject": rendered.subject,
        "cites": "; ".join(facts.cites),
    }


def csv_bytes(rows: Sequence[dict[str, str]]) -> bytes:
    """The rows as CSV in UTF-8 with a byte-order mark (so spreadsheets read Korean); a value
    that a spreadsheet would run as a formula gets a leading apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["'" + v if v.startswith(_FORMULA_START) else v for v in row.values()])
    return out.getvalue().encode("utf-8-sig")


def xlsx_bytes(rows: Sequence[dict[str, str]]) -> bytes:
    """The rows as an XLSX sheet; every value is stored as text, never as a formula."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("notices")
    sheet.freeze_panes = "A2"
    for index, name in enumerate(COLUMNS):
        width = 70 if name in ("urls", "page_url", "subject", "description") else 24
        sheet.column_dimensions[get_column_letter(index + 1)].width = width
    bold, wrap = Font(bold=True), Alignment(wrap_text=True, vertical="top")
    header = []
    for name in COLUMNS:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in rows:
        cells = []
        for value in row.values():
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"  # "=..." stays text
            cell.alignment = wrap
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def report_lines(
    key: str, recipient: RecipientInfo, notices: Sequence[OutgoingNotice]
) -> list[tuple[str, str, str]]:
    """The evidence report as (style, label, text) lines: a heading, then each notice's facts
    and its text."""
    requester = notices[0].facts.requester
    now = datetime.now(UTC).isoformat(timespec="seconds")
    lines = [
        ("title", "", "삭제 요청 증거 보고서 · Evidence report"),
        ("field", "배치 Batch", key),
        ("field", "수신처 Recipient", f"{recipient.name} ({recipient.key}, {recipient.kind})"),
        ("field", "작성 Generated", now),
        ("field", "요청 기관 Requester", requester.organisation),
        ("field", "권한 Authority", requester.authority),
        ("field", "연락처 Contact", "; ".join(p for p in (requester.email, requester.phone) if p)),
        ("field", "주소 Address", requester.address),
        ("field", "서명 Signatory", requester.signatory),
        ("field", "건수 Notices", str(len(notices))),
    ]
    for number, notice in enumerate(notices, start=1):
        facts, rendered = notice.facts, notice.rendered
        evidence = facts.evidence
        lines += [
            ("heading", "", f"{number}. {notice.idempotency_key}"),
            ("field", "유형 Category", f"{CATEGORY_KO[facts.category]} ({facts.category})"),
            *[("field", "URL", url) for url in facts.urls],
            ("field", "게시 페이지 Page", facts.page_url or "-"),
            ("field", "최초 확인 First seen", facts.first_seen),
            ("field", "최종 확인 Last seen", facts.last_seen),
            ("field", "매체 Media", facts.media_type),
            ("field", "SHA-256", facts.sha256),
            ("field", "MD5", facts.md5),
            ("field", "PDQ", facts.pdq or "-"),
            ("field", "법적 근거 Legal basis", "; ".join(rendered.legal_basis)),
            ("field", "설명 Description", facts.description),
            ("field", "증거 패키지 Evidence", str(evidence.package_id) if evidence else "-"),
            ("field", "매니페스트 Manifest", evidence.manifest_sha256 if evidence else "-"),
            ("field", "서명 키 Key", evidence.public_key if evidence else "-"),
            ("field", "이전 요청 Cites", "; ".join(facts.cites) or "-"),
            ("field", "제목 Subject", rendered.subject),
            ("text", f"요청문 Notice ({rendered.language})", rendered.body),
        ]
    return lines


def pdf_bytes(lines: Sequence[tuple[str, str, str]], font_file: Path | None) -> bytes:
    """The report lines as an A4 PDF, Korean drawn with an embedded font."""
    text = "".join(label + value for _, label, value in lines)
    with tempfile.TemporaryDirectory(prefix="safeeye-report-") as workdir:
        pdf = new_document(text, Path(workdir), font_file)
        pdf.set_title("Evidence report")
        pdf.set_creator("safeeye")
        pdf.add_page()
        for style, label, value in lines:
            if style == "title":
                pdf.set_font_size(15)
                pdf.multi_cell(0, 9, value, align="L", new_x="LMARGIN", new_y="NEXT")
                pdf.set_font_size(9)
            elif style == "heading":
                pdf.ln(3)
                pdf.set_font_size(11)
                pdf.multi_cell(0, 7, value, align="L", new_x="LMARGIN", new_y="NEXT")
                pdf.set_font_size(9)
            elif style == "field":
                pdf.cell(42, 5, label, new_x="RIGHT", new_y="TOP")
                _paragraph(pdf, 5, value or "-")
            else:
                pdf.multi_cell(0, 5, label, align="L", new_x="LMARGIN", new_y="NEXT")
                pdf.set_font_size(8)
                for paragraph in value.split("\n"):
                    _paragraph(pdf, 4, paragraph)
                pdf.set_font_size(9)
        return bytes(pdf.output())


def _paragraph(pdf: FPDF, height: float, text: str) -> None:
    """``text`` from the current position to the right margin, wrapped when it does not fit
    (a line that fits skips fpdf2's slow line breaking)."""
    if "\n" not in text and pdf.get_string_width(text) < pdf.w - pdf.r_margin - pdf.get_x():
        pdf.cell(0, height, text, new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.multi_cell(0, height, text, align="L", new_x="LMARGIN", new_y="NEXT")


def file_stem(key: str) -> str:
    """A file name for ``key``: the key itself when it is plain, else a safe form with a hash
    of the key (two keys never share files)."""
    safe = re.sub(r"\.{2,}", ".", _UNSAFE_NAME.sub("_", key)).lstrip(".")[:100]
    if safe and safe == key:
        return safe
    return f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


@register
class ExportConnector(Connector):
    """Writes each send as three files under the export folder (``export_dir``, default
    DATA_DIR/exports; private): ``RECIPIENT/KEY.csv`` and ``.xlsx`` (one row per notice) and
    ``KEY.pdf``, the evidence report. The names derive from the key, so a repeat rewrites the
    same files: harmless. Every notice is acknowledged ``accepted`` (the officer files them).
    """

    name = "export"

    def send(self, key: str, recipient: RecipientInfo, notices: list[OutgoingNotice]) -> SendResult:
        if not notices:
            return SendResult(acks=())
        settings = self.app.settings
        root = _private_dir(settings.export_dir or settings.data_dir / "exports")
        folder = _private_dir(root / file_stem(recipient.key))
        stem = file_stem(key)
        ordered = sorted(notices, key=lambda notice: notice.notice_id)
        rows = [notice_row(recipient, notice) for notice in ordered]
        try:
            report = pdf_bytes(report_lines(key, recipient, ordered), settings.pdf_font_file)
        except ConfigError as exc:  # no font to draw Korean with: a setting to fix
            raise ConnectorError(str(exc), retryable=False, code="config") from exc
        files = {
            f"{stem}.csv": csv_bytes(rows),
            f"{stem}.xlsx": xlsx_bytes(rows),
            f"{stem}.pdf": report,
        }
        for name, data in files.items():
            write_atomically(folder / name, [data])
        names = [f"{folder.name}/{name}" for name in files]
        remote = f"{folder.name}/{stem}"
        acks = tuple(ItemAck(n.notice_id, "accepted", remote_id=remote) for n in ordered)
        return SendResult(acks=acks, detail={"files": names})
