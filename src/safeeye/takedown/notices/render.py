"""A notice written out: its text in the chosen language from the templates and the translation
catalogs, an English copy attached, and the same facts structured for APIs and sheets."""

from __future__ import annotations

import gettext
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files
from io import BytesIO
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from jinja2 import Environment, PackageLoader, StrictUndefined

from safeeye.takedown.model import Category, NoticeFacts, RecipientInfo, RenderedNotice, Requester
from safeeye.takedown.notices.language import ENGLISH, attaches_english, supported
from safeeye.takedown.notices.legal import (
    CATEGORY_TERMS,
    ILLEGALITY_EU,
    N_,
    LegalRoute,
    routes_for,
)

PACKAGE = "safeeye.takedown.notices"
DOMAIN = "notices"
TEMPLATES = ("notice.txt.j2", "subject.txt.j2")

# What the notice asks of each kind of recipient (platforms and anything unknown: removal).
REQUESTS: dict[str, str] = {
    "platform": N_(
        "We ask you to remove the item described below, or to disable access to it, and to "
        "keep identical copies from being uploaded again."
    ),
    "search": N_(
        "We ask you to delist the URLs described below from your search results, image search "
        "included."
    ),
    "regulator": N_(
        "We ask you to deliberate on the item described below and to have it deleted, or "
        "access to it blocked."
    ),
    "hosting": N_(
        "We ask you, as the host of the server, to remove the item described below or to "
        "disable access to it, or to have your customer do so."
    ),
    "registrar": N_(
        "We ask you to act under your abuse policy on the domain that serves the item "
        "described below, so that it stops being available."
    ),
    "hash_sharing": N_(
        "We ask you to add the hashes of the item described below to your hash list and to "
        "share them with the participating platforms."
    ),
}
MEDIA_TYPES = {"image": N_("image"), "video": N_("video")}
ITEM_HEADING = N_("“3. The item”")  # how elements point to the item's section, quoted

# Characters that could forge a line of the notice, or hide or reorder part of a URL.
_LINE_BREAKS = re.compile("[\t\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)


def clean(text: str) -> str:
    """``text`` from outside as one line of plain data: line breaks become spaces, other control
    characters and invisible direction marks go."""
    return _INVISIBLE.sub("", _LINE_BREAKS.sub(" ", text)).strip()


def clean_url(url: str) -> str:
    """A URL without any control or invisible character (none belongs in one)."""
    return _INVISIBLE.sub("", _LINE_BREAKS.sub("", url)).strip()


@dataclass(frozen=True)
class RouteText:
    """One legal route as a notice prints it."""

    title: str
    scope: str | None
    elements: tuple[tuple[str, str], ...]  # (marker, sentence)


def render(facts: NoticeFacts) -> RenderedNotice:
    """``facts`` written as a notice in ``facts.language`` (raises ``UnsupportedLanguageError``
    for one without templates), with English attached when that is not English."""
    language = supported(facts.language)
    routes = routes_for(facts.recipient, facts.category, facts.copyright_holder)
    subject, body = _write(language, facts, routes)
    english = _write(ENGLISH, facts, routes) if attaches_english(language) else None
    return RenderedNotice(
        language=language,
        subject=subject,
        body=body,
        english_subject=english[0] if english else None,
        english_body=english[1] if english else None,
        legal_basis=tuple(r.key for r in routes),
        fields=structured(facts, language, routes),
    )


def victim_name(facts: NoticeFacts) -> str | None:
    """The victim's name, only where the recipient's form demands it and the caller gave it."""
    if "victim_name" in facts.recipient.requires and facts.victim_name:
        return clean(facts.victim_name) or None
    return None


def structured(facts: NoticeFacts, language: str, routes: tuple[LegalRoute, ...]) -> dict[str, Any]:
    """The notice's facts as JSON-ready fields (English terms), for APIs and bulk sheets."""
    requester = facts.requester
    duties = [r.removal_hours for r in routes if r.removal_hours is not None]
    fields: dict[str, Any] = {
        "reference": clean(facts.notice_ref),
        "language": language,
        "category": facts.category.value,
        "category_term": CATEGORY_TERMS[(routes[0].terms, facts.category)],
        "request": facts.recipient.kind if facts.recipient.kind in REQUESTS else "platform",
        "legal_basis": [
            {"route": r.key, "citation": r.citation, "elements": [e.marker for e in r.elements]}
            for r in routes
        ],
        "removal_hours": min(duties) if duties else None,
        "deadline_hours": facts.recipient.deadline_hours,
        "urls": [clean_url(u) for u in facts.urls],
        "page_url": clean_url(facts.page_url) if facts.page_url else None,
        "first_seen": clean(facts.first_seen),
        "last_seen": clean(facts.last_seen),
        "hashes": {
            "sha256": clean(facts.sha256),
            "md5": clean(facts.md5),
            "pdq": clean(facts.pdq) if facts.pdq else None,
        },
        "media_type": clean(facts.media_type),
        "description": clean(facts.description),
        "requester": {
            "organisation": clean(requester.organisation),
            "authority": clean(requester.authority),
            "address": clean(requester.address),
            "email": clean(requester.email),
            "phone": clean(requester.phone),
            "signatory": clean(requester.signatory),
        },
        "evidence": None,
        "resend": facts.resend,
        "cites": [clean(c) for c in facts.cites],
        "escalation": clean(facts.escalation) if facts.escalation else None,
        "copyright_holder": facts.copyright_holder,
    }
    if facts.evidence is not None:
        fields["evidence"] = {
            "package_id": facts.evidence.package_id,
            "manifest_sha256": facts.evidence.manifest_sha256,
            "public_key": facts.evidence.public_key,
        }
    name = victim_name(facts)
    if name is not None:
        fields["victim_name"] = name
    return fields


def _write(language: str, facts: NoticeFacts, routes: tuple[LegalRoute, ...]) -> tuple[str, str]:
    env = environment(language)
    context = _context(translations(language), facts, routes)
    subject = env.get_template("subject.txt.j2").render(context)
    body = env.get_template("notice.txt.j2").render(context)
    return " ".join(subject.split()), body.strip() + "\n"


def _context(
    catalog: gettext.NullTranslations, facts: NoticeFacts, routes: tuple[LegalRoute, ...]
) -> dict[str, Any]:
    media = clean(facts.media_type)
    return {
        **_fixed_context(catalog, facts.requester, facts.recipient, facts.category, routes, media),
        "ref": clean(facts.notice_ref),
        "victim_name": victim_name(facts),
        "urls": [clean_url(u) for u in facts.urls],
        "page_url": clean_url(facts.page_url) if facts.page_url else None,
        "first_seen": clean(facts.first_seen),
        "last_seen": clean(facts.last_seen),
        "sha256": clean(facts.sha256),
        "md5": clean(facts.md5),
        "pdq": clean(facts.pdq) if facts.pdq else None,
        "description": clean(facts.description),
        "evidence": facts.evidence,
        "resend": facts.resend,
        "cites": ", ".join(clean(c) for c in facts.cites),
        "escalation": clean(facts.escalation) if facts.escalation else None,
    }


@lru_cache(maxsize=256)
def _fixed_context(
    catalog: gettext.NullTranslations,
    requester: Requester,
    recipient: RecipientInfo,
    category: Category,
    routes: tuple[LegalRoute, ...],
    media: str,
) -> dict[str, Any]:
    """What a notice says that depends on who asks whom about what kind of item, not on the
    item itself: the same for every notice of a batch, so written once (the values are
    read-only: immutable texts and tuples)."""
    values = {
        "org": clean(requester.organisation),
        "authority": clean(requester.authority),
        "address": clean(requester.address),
        "email": clean(requester.email),
        "phone": clean(requester.phone),
        "signatory": clean(requester.signatory),
        "item": catalog.gettext(ITEM_HEADING),
        "illegality": catalog.gettext(ILLEGALITY_EU[category]),
    }

    def say(message: str, **extra: str) -> str:
        # The catalog's sentence is the format; the facts only ever fill its fields.
        return catalog.gettext(message) % {**values, **extra}

    def term(route: LegalRoute) -> str:
        return say(CATEGORY_TERMS[(route.terms, category)])

    binding = recipient.kind != "regulator"  # duties bind providers, not the regulator
    return {
        "org": values["org"],
        "authority": values["authority"],
        "address": values["address"],
        "email": values["email"],
        "phone": values["phone"],
        "signatory": values["signatory"],
        "request": say(REQUESTS.get(recipient.kind, REQUESTS["platform"])),
        "deadline_hours": f"{recipient.deadline_hours:g}",
        "duties": tuple(say(r.duty) for r in routes if r.duty and binding),
        "media": say(MEDIA_TYPES[media]) if media in MEDIA_TYPES else media,
        "category": term(routes[0]),
        "routes": tuple(
            RouteText(
                title=say(r.title),
                scope=say(r.scope) if r.scope and not r.covers(recipient.jurisdiction) else None,
                elements=tuple((e.marker, say(e.text, category=term(r))) for e in r.elements),
            )
            for r in routes
        ),
    }


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of ``language`` (English is the catalogs' source language and has none),
    read from its ``.po`` file: fuzzy or empty entries fall back to English."""
    if language == ENGLISH:
        return gettext.NullTranslations()
    path = files(PACKAGE) / "locale" / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@cache
def environment(language: str) -> Environment:
    """The templates with ``language``'s catalog installed. Autoescape is off (the output is
    plain text) and facts reach templates only as values, never as template source."""
    env = Environment(
        loader=PackageLoader(PACKAGE, "templates"),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # the templates ship with the package; no stat() per notice
    )
    catalog = translations(language)

    def translate(message: str, **variables: Any) -> str:
        # jinja2.ext.i18n's "newstyle" gettext (what babel.cfg extracts with), called directly:
        # the catalog's sentence is the format, the values only fill its fields.
        return catalog.gettext(message) % variables

    env.globals["_"] = translate
    return env
