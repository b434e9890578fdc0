"""The transparency report: each recipient's notices, removals and hours to removal, as a PDF
in Korean and English (the text drawn with an embedded Noto CJK font)."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from safeeye.config import Settings
from safeeye.db.types import utcnow
from safeeye.pdf import new_document
from safeeye.takedown.reports import RecipientFigures

TITLE = "삭제 요청 처리 현황 / Transparency report: deletion requests and removals"
NONE_SENT = "이 기간에 보낸 요청이 없습니다 / No notices were sent in this period."
COLUMNS = (
    ("수신처 / Recipient", 58),
    ("요청 / Notices", 24),
    ("삭제 / Removed", 24),
    ("비율 / Share", 22),
    ("중앙값(시간) / Median h", 30),
    ("90%(시간) / P90 h", 30),
)


def write_report(
    settings: Settings,
    figures: list[RecipientFigures],
    path: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Path:
    """Write the report for ``figures`` to ``path`` (private: 0600)."""
    period = f"{_day(since) or '…'} – {_day(until) or _day(utcnow())}"
    lines = [
        TITLE,
        settings.org_name,
        f"기간 / Period: {period}",
        "시간은 요청을 보낸 때부터 삭제가 확인된 때까지 / Hours from sending to verified removal.",
    ]
    rows = [
        (
            f"{f.name} ({f.recipient})",
            str(f.notices),
            str(f.removed),
            f"{f.removed_share:.0%}",
            _hours(f.median_hours_to_removal),
            _hours(f.p90_hours_to_removal),
        )
        for f in figures
    ]
    text = "\n".join(lines) + "".join(c for c, _ in COLUMNS) + "".join("".join(r) for r in rows)
    with tempfile.TemporaryDirectory(prefix="safeeye-report-") as workdir:
        pdf = new_document(text + NONE_SENT + "–…", Path(workdir), settings.pdf_font_file)
        pdf.add_page()
        pdf.set_font_size(13)
        pdf.multi_cell(0, 7, lines[0], new_x="LMARGIN", new_y="NEXT")
        pdf.set_font_size(10)
        for line in lines[1:]:
            pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        pdf.set_font_size(8)
        for title, width in COLUMNS:
            pdf.cell(width, 7, title, border=1)
        pdf.ln()
        for row in rows:
            for value, (_title, width) in zip(row, COLUMNS, strict=True):
                pdf.cell(width, 7, value[:40], border=1)
            pdf.ln()
        if not rows:
            pdf.multi_cell(0, 7, NONE_SENT, new_x="LMARGIN", new_y="NEXT")
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        pdf.output(str(path))
    return path


def _day(value: datetime | None) -> str | None:
    return value.date().isoformat() if value is not None else None


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
