"""The languages notices are written in, and which one a notice gets."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from safeeye.errors import SafeEyeError

ENGLISH = "en"
# Korean for the center's own country; English, attached to every notice, as the lingua franca
# of trust-and-safety teams; Chinese, Japanese and Russian for the platforms and hosts of those
# markets; German and Dutch because Germany and the Netherlands host a large share of Europe's
# servers (and, year after year, of the abuse material hotlines report), so their hosting
# providers' abuse desks are among a notice's most frequent readers.
LANGUAGES: dict[str, str] = {
    "ko": "Korean",
    "en": "English",
    "zh": "Chinese (simplified)",
    "ja": "Japanese",
    "ru": "Russian",
    "de": "German",
    "nl": "Dutch",
}


class UnsupportedLanguageError(SafeEyeError):
    """A notice asked for in a language that has no templates."""

    code = "notice_language"


def normalise(tag: str | None) -> str | None:
    """The supported language a tag such as ``ko-KR``, ``zh_Hans`` or ``EN`` means, or None.
    Every Chinese tag means simplified Chinese, the only Chinese script notices have."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LANGUAGES else None


def supported(tag: str | None) -> str:
    """``tag`` as a supported language; raises ``UnsupportedLanguageError``."""
    language = normalise(tag)
    if language is None:
        known = ", ".join(LANGUAGES)
        raise UnsupportedLanguageError(f"no notice templates for {tag!r} (known: {known})")
    return language


def choose_language(recipient_languages: Iterable[str], page_language: str | None) -> str:
    """The language of a notice: the page's when the recipient reads it, else the first of the
    recipient's languages that notices are written in, else English."""
    readable = [code for code in map(normalise, recipient_languages) if code]
    page = normalise(page_language)
    if page is not None and page in readable:
        return page
    return readable[0] if readable else ENGLISH


_HTML_LANG = re.compile(
    rb"<html\b[^>]*?\blang\s*=\s*[\"']?\s*([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*)", re.I
)


def declared_language(headers: Mapping[str, str] | None, html: bytes | None) -> str | None:
    """The language a page declares: its ``<html lang>``, else its Content-Language header
    (the first tag of a list); None when it declares none or one we cannot read."""
    if html:
        found = _HTML_LANG.search(html[:65536])
        if found:
            return found.group(1).decode("ascii").lower()
    for name, value in (headers or {}).items():
        if name.lower() == "content-language" and value.strip():
            return value.split(",")[0].strip().lower() or None
    return None


def attaches_english(language: str) -> bool:
    """Whether a notice in ``language`` carries an English copy: whenever it is not English."""
    return language != ENGLISH
