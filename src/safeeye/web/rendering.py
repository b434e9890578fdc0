"""Pages: Jinja2 templates (autoescaped) rendered in the request's language, with what every
page needs (the signed-in person, the CSRF token, versioned static URLs)."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request

from safeeye.web import csrf
from safeeye.web.i18n import LANGUAGE_COOKIE, LANGUAGES, PACKAGE, choose_language, translations

STATIC_PREFIX = "/static/"
YEAR = 365 * 24 * 3600


@cache
def environment(language: str) -> Environment:
    """The templates with ``language``'s catalog installed (one environment per language, so
    no request ever sees another's catalog)."""
    env = Environment(
        loader=PackageLoader(PACKAGE, "templates"),
        autoescape=select_autoescape(("html",), default=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,  # the templates ship with the package
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["static"] = static_url
    return env


@cache
def static_url(path: str) -> str:
    """``/static/<path>?v=<content hash>``: such a URL may be kept a year, since a new file
    is a new URL."""
    digest = hashlib.sha256((files(PACKAGE) / "static" / path).read_bytes()).hexdigest()
    return f"{STATIC_PREFIX}{path}?v={digest[:12]}"


def page_language(request: Request) -> str:
    """The language chosen for this request (see ``auth.current_principal``), else the
    visitor's choice or the default."""
    return getattr(request.state, "language", None) or choose_language(request)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """``template`` as this request's page; sets the cookies the page relies on (the
    anonymous CSRF cookie, the language a visitor picked)."""
    language = page_language(request)
    values = {
        "request": request,
        "me": getattr(request.state, "principal", None),
        "lang": language,
        "languages": LANGUAGES,
        "csrf_field": csrf.FIELD,
        "csrf_token": csrf.page_token(request),
        **(context or {}),
    }
    body = environment(language).get_template(template).render(values)
    response = HTMLResponse(body, status_code=status_code, headers=headers)
    secure = request.url.scheme == "https"
    new_secret = getattr(request.state, "new_csrf_cookie", None)
    if new_secret:
        response.set_cookie(
            csrf.anonymous_cookie_name(request),
            new_secret,
            httponly=True,
            secure=secure,
            samesite="lax",
        )
    picked = request.query_params.get(LANGUAGE_COOKIE)
    if picked and picked == language:
        response.set_cookie(
            LANGUAGE_COOKIE, language, max_age=YEAR, httponly=True, secure=secure, samesite="lax"
        )
    return response
