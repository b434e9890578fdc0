"""The pages' languages: Babel gettext catalogs (Korean by default, English the source language)
and the choice of language for one request.

English is the language the templates are written in, so it needs no catalog; every other
language has ``locale/<lang>/LC_MESSAGES/web.po``, read (and compiled in memory) once per process.
Update the catalog with the pybabel commands in docs/web.md.
"""

from __future__ import annotations

import gettext
from functools import cache
from importlib.resources import files
from io import BytesIO
from typing import TYPE_CHECKING

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

if TYPE_CHECKING:
    from starlette.requests import Request

PACKAGE = "safeeye.web"
DOMAIN = "web"
ENGLISH = "en"
#: The language of a new installation and of anyone who has not chosen one.
DEFAULT_LANGUAGE = "ko"
#: Languages the pages speak, in the order the switch offers them, with their own names.
LANGUAGES = {"ko": "한국어", "en": "English"}
#: The cookie (and query parameter) with which a visitor who is not signed in picks a language.
LANGUAGE_COOKIE = "lang"


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of ``language`` (English, the source language, has none); fuzzy or empty
    entries fall back to English."""
    if language == ENGLISH:
        return gettext.NullTranslations()
    path = files(PACKAGE) / "locale" / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def supported(language: str | None) -> str | None:
    """``language`` when the pages speak it (``ko``, ``ko-KR`` and ``KO`` are Korean)."""
    if not language:
        return None
    base = language.strip().replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def requested_language(request: Request) -> str | None:
    """The language a visitor asked for on a public page: ``?lang=`` first, then the cookie."""
    return supported(request.query_params.get(LANGUAGE_COOKIE)) or supported(
        request.cookies.get(LANGUAGE_COOKIE)
    )


def choose_language(request: Request, account_language: str | None = None) -> str:
    """The language of this request's page: the signed-in person's setting, else what the
    visitor asked for, else the installation's default (Korean)."""
    return supported(account_language) or requested_language(request) or DEFAULT_LANGUAGE
