"""The dashboard: open cases, items awaiting review, notices by state, deadlines about to pass, and
charts over time.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from safeeye.overview import Dashboard, dashboard
from safeeye.web import charts
from safeeye.web.auth import ServicesFor, SignedIn
from safeeye.web.i18n import translations
from safeeye.web.rendering import page_language, render

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["dashboard"])


@router.get("/", response_class=HTMLResponse)
def dashboard_page(request: Request, me: SignedIn, services: ServicesFor) -> HTMLResponse:
    """The signed-in person's dashboard; someone with no role yet (a one-time password to
    change first) sees only what to do next."""
    figures = services.call(dashboard, read_only=True) if me.roles else None
    drawn = _charts(request, figures) if figures is not None else {}
    return render(request, "dashboard.html", {"dash": figures, "charts": drawn})


@api.get("/dashboard")
def dashboard_api(services: ServicesFor) -> Dashboard:
    """The dashboard's figures (each block null where the caller's roles may not read it)."""
    return services.call(dashboard, read_only=True)


def _charts(request: Request, figures: Dashboard) -> dict[str, Markup]:
    """The dashboard's charts as inline SVG, their texts in the page's language."""
    _ = translations(page_language(request)).gettext
    drawn: dict[str, Markup] = {}
    if figures.detections is not None:
        drawn["detections"] = charts.day_bars(
            "chart-detections",
            _("Detections per day"),
            _("Matches found on each of the last %(days)s days; %(total)s in all.")
            % {"days": figures.days, "total": sum(d.count for d in figures.detections)},
            [
                charts.Bar(d.day, d.count, _("%(day)s: %(count)s found") % vars(d))
                for d in figures.detections
            ],
        )
    if figures.notices_sent is not None:
        drawn["sent"] = charts.day_bars(
            "chart-sent",
            _("Notices sent per day"),
            _("Deletion requests sent on each of the last %(days)s days; %(total)s in all.")
            % {"days": figures.days, "total": sum(d.count for d in figures.notices_sent)},
            [
                charts.Bar(d.day, d.count, _("%(day)s: %(count)s sent") % vars(d))
                for d in figures.notices_sent
            ],
        )
    if figures.removal_hours:
        drawn["removal"] = charts.named_bars(
            "chart-removal",
            _("Median hours to removal, per recipient"),
            _("For notices sent in the last %(days)s days and verified removed.")
            % {"days": figures.days},
            [
                charts.Bar(
                    r.recipient,
                    r.median_hours,
                    _("%(recipient)s: %(hours)s hours (median of %(removed)s removals)")
                    % {"recipient": r.name, "hours": r.median_hours, "removed": r.removed},
                )
                for r in figures.removal_hours
            ],
        )
    return drawn
