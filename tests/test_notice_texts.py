"""Notice texts: every language, category and legal route renders with what a valid notice needs,
and nothing from outside can change the notice's wording."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from importlib.resources import files

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from safeeye.takedown.model import (
    Category,
    EvidenceRef,
    NoticeFacts,
    RecipientInfo,
    RenderedNotice,
    Requester,
)
from safeeye.takedown.notices.language import (
    ENGLISH,
    LANGUAGES,
    UnsupportedLanguageError,
    choose_language,
)
from safeeye.takedown.notices.legal import (
    ROUTES,
    UnknownRouteError,
    routes_for,
)
from safeeye.takedown.notices.render import (
    DOMAIN,
    PACKAGE,
    TEMPLATES,
    render,
    translations,
)

NOTICES = files(PACKAGE)
GOOD_FAITH = (
    "We state in good faith that the information in this notice is accurate and complete, and "
    "that the item is published without the consent of the person depicted."
)
HEADINGS = (
    "1. Who is asking",
    "2. Our request",
    "3. The item",
    "4. Legal basis",
    "5. Statement of good faith",
    "6. Contact",
    "7. Evidence",
    "8. Earlier notices",
)
REQUESTER = Requester(
    organisation="Seoul Digital Sex Crime Support Center",
    address="1 Example-ro, Jung-gu, Seoul",
    email="takedown@center.example",
    phone="+82 2 555 0100",
    authority="a support organisation designated under the Telecommunications Business Act",
    signatory="Deletion-support officer Kim",
)
EVIDENCE = EvidenceRef(package_id=4711, manifest_sha256="9f" * 32, public_key="MCowBQYDK2VwAyEA")
ROUTE_CASES = [
    (key, category)
    for key, route in ROUTES.items()
    for category in Category
    if route.applies(category, copyright_holder=True)
]


def recipient(**changes: object) -> RecipientInfo:
    base = RecipientInfo(
        id=1,
        key="example-platform",
        name="Example Platform",
        kind="platform",
        connector="email",
        address="abuse@platform.example",
        languages=("en",),
        jurisdiction="US",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def facts(**changes: object) -> NoticeFacts:
    base = NoticeFacts(
        recipient=recipient(),
        category=Category.SYNTHETIC,
        urls=("https://cdn.example/media/a1b2.jpg", "https://cdn.example/media/a1b2-large.jpg"),
        page_url="https://forum.example/thread/77",
        first_seen="2026-05-01T09:30:00+00:00",
        last_seen="2026-05-02T18:05:00+00:00",
        sha256="ab" * 32,
        md5="cd" * 16,
        pdq="ef" * 32,
        media_type="image",
        description="an image (JPEG, 800x600 pixels)",
        requester=REQUESTER,
        evidence=EVIDENCE,
        language="en",
        notice_ref="SE-20260502-0001",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def texts(notice: RenderedNotice) -> list[str]:
    """The notice's bodies: the chosen language's and, where attached, the English one."""
    return [notice.body] + ([notice.english_body] if notice.english_body else [])


@pytest.mark.parametrize("language", sorted(LANGUAGES))
@pytest.mark.parametrize(("route_key", "category"), ROUTE_CASES)
def test_every_language_renders_each_route_with_every_element_it_requires(
    language: str, route_key: str, category: Category
) -> None:
    route = ROUTES[route_key]
    notice = render(
        facts(
            recipient=recipient(languages=(language,), legal_routes=(route_key,)),
            category=category,
            language=language,
            copyright_holder=True,
        )
    )
    say = translations(language).gettext
    assert notice.language == language
    assert notice.legal_basis == (route_key,)
    for body in texts(notice):
        for element in route.elements:
            assert f"[{element.marker}] " in body, element.marker
        for fact in (
            *facts().urls,
            "https://forum.example/thread/77",
            "2026-05-01T09:30:00+00:00",
            "2026-05-02T18:05:00+00:00",
            "ab" * 32,
            "cd" * 16,
            "ef" * 32,
            "takedown@center.example",
            "+82 2 555 0100",
            "4711",
            "9f" * 32,
            "MCowBQYDK2VwAyEA",
            "SE-20260502-0001",
        ):
            assert fact in body, fact
    assert say(GOOD_FAITH) in notice.body
    assert say(route.title) in notice.body
    if route.removal_hours is not None:
        assert say(route.duty or "") in notice.body
        assert f"{route.removal_hours:g}" in notice.body
    if language != ENGLISH:
        assert GOOD_FAITH not in notice.body  # really translated, not English left in place


def test_body_says_who_asks_then_what_then_the_item_then_the_law_then_the_rest() -> None:
    notice = render(facts(resend=1, cites=("SE-20260401-0009",)))
    places = [notice.body.index(f"\n{heading}\n") for heading in HEADINGS]
    assert places == sorted(places)


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_english_is_attached_exactly_when_the_notice_is_not_in_english(language: str) -> None:
    notice = render(facts(recipient=recipient(languages=(language,)), language=language))
    if language == ENGLISH:
        assert notice.english_subject is None and notice.english_body is None
    else:
        assert notice.english_body is not None and notice.english_subject is not None
        assert GOOD_FAITH in notice.english_body
        assert notice.english_body != notice.body
        assert notice.english_subject != notice.subject


@pytest.mark.parametrize(
    ("recipient_languages", "page_language", "chosen"),
    [
        (("ko", "en"), "en", "en"),  # the page's language, when the recipient reads it
        (("en", "ja"), "ja-JP", "ja"),
        (("de", "nl"), "nl", "nl"),
        (("en", "ko"), "ru", "en"),  # a page in a language the recipient does not read
        (("ko-KR",), None, "ko"),  # no page language: the recipient's first
        (("fr", "zh-Hans"), "fr", "zh"),  # the first language notices exist in
        (("zh_TW",), "zh-CN", "zh"),
        (("fr", "es"), "fr", "en"),  # none of them: English
        ((), "ko", "en"),
    ],
)
def test_language_is_the_pages_if_read_else_the_recipients_first_else_english(
    recipient_languages: tuple[str, ...], page_language: str | None, chosen: str
) -> None:
    assert choose_language(recipient_languages, page_language) == chosen


def test_a_notice_in_a_language_without_templates_is_refused() -> None:
    with pytest.raises(UnsupportedLanguageError):
        render(facts(language="fr"))


@pytest.mark.parametrize(
    ("jurisdiction", "kind", "category", "copyright_holder", "routes"),
    [
        ("KR", "platform", Category.ILLEGALLY_FILMED, False, ("kr_tba_22_5", "kr_spa_14")),
        ("KR", "platform", Category.SYNTHETIC, False, ("kr_tba_22_5", "kr_spa_14_2")),
        ("KR", "regulator", Category.MINOR, False, ("kr_tba_22_5", "kr_youth_11")),
        ("kr", "hosting", Category.SYNTHETIC, True, ("kr_tba_22_5", "kr_spa_14_2")),
        ("US", "platform", Category.SYNTHETIC, False, ("us_take_it_down",)),
        ("US", "platform", Category.ILLEGALLY_FILMED, True, ("us_take_it_down", "us_dmca_512c3")),
        ("DE", "hosting", Category.ILLEGALLY_FILMED, False, ("eu_dsa_16",)),
        ("NL", "image_host", Category.MINOR, True, ("eu_dsa_16",)),
        (
            "JP",
            "platform",
            Category.SYNTHETIC,
            False,
            ("abuse_policy", "eu_dsa_16", "us_take_it_down"),
        ),
        ("RU", "hosting", Category.SYNTHETIC, False, ("abuse_policy", "eu_dsa_16")),
        (None, "registrar", Category.ILLEGALLY_FILMED, False, ("abuse_policy",)),
        ("SG", "search", Category.SYNTHETIC, True, ("abuse_policy",)),
    ],
)
def test_routes_follow_jurisdiction_category_and_copyright(
    jurisdiction: str | None,
    kind: str,
    category: Category,
    copyright_holder: bool,
    routes: tuple[str, ...],
) -> None:
    chosen = routes_for(recipient(jurisdiction=jurisdiction, kind=kind), category, copyright_holder)
    assert tuple(r.key for r in chosen) == routes


def test_a_recipients_own_routes_are_used_but_only_those_fitting_the_category() -> None:
    global_platform = recipient(
        jurisdiction="US",
        legal_routes=("us_take_it_down", "kr_tba_22_5", "kr_spa_14", "kr_spa_14_2", "kr_youth_11"),
    )
    chosen = routes_for(global_platform, Category.SYNTHETIC)
    assert [r.key for r in chosen] == ["us_take_it_down", "kr_tba_22_5", "kr_spa_14_2"]
    dmca_only = recipient(legal_routes=("us_dmca_512c3",))
    assert [r.key for r in routes_for(dmca_only, Category.SYNTHETIC)] == ["abuse_policy"]


def test_an_unknown_route_in_a_recipients_list_is_an_error() -> None:
    with pytest.raises(UnknownRouteError, match="us_dmca_512"):
        routes_for(recipient(legal_routes=("us_dmca_512",)), Category.SYNTHETIC)


def test_a_law_outside_the_recipients_jurisdiction_says_how_far_it_relies_on_it() -> None:
    abroad = render(facts(recipient=recipient(jurisdiction="JP")))
    at_home = render(facts(recipient=recipient(jurisdiction="DE", legal_routes=("eu_dsa_16",))))
    dsa_scope = ROUTES["eu_dsa_16"].scope or ""
    assert dsa_scope in abroad.body
    assert dsa_scope not in at_home.body


def test_the_regulator_is_asked_to_deliberate_and_is_not_told_a_providers_duty() -> None:
    korea = dict(jurisdiction="KR", languages=("ko",))
    regulator = render(facts(recipient=recipient(kind="regulator", **korea), language="ko"))
    platform = render(facts(recipient=recipient(kind="platform", **korea), language="ko"))
    duty = translations("ko").gettext(ROUTES["kr_tba_22_5"].duty or "")
    assert duty in platform.body and duty not in regulator.body
    assert regulator.body != platform.body


@pytest.mark.parametrize(
    ("requires", "name", "shown"),
    [
        ((), None, False),
        ((), "Hong Gildong", False),  # known, but the recipient's form does not ask for it
        (("victim_name",), None, False),
        (("victim_name",), "Hong Gildong", True),
    ],
)
def test_the_victims_name_appears_only_where_the_recipients_form_demands_it(
    requires: tuple[str, ...], name: str | None, shown: bool
) -> None:
    notice = render(
        facts(
            recipient=recipient(requires=requires, languages=("ko",)),
            language="ko",
            victim_name=name,
        )
    )
    everything = json.dumps([notice.subject, *texts(notice), notice.fields], ensure_ascii=False)
    assert ("Hong Gildong" in everything) is shown
    assert ("victim_name" in notice.fields) is shown


def test_outside_text_is_printed_literally_never_run_as_template_or_format() -> None:
    hostile_url = "https://evil.example/{{ 7*7 }}{% for x in range(3) %}x{% endfor %}.jpg"
    notice = render(
        facts(
            urls=(hostile_url,),
            page_url="https://evil.example/%(org)s/{{ config }}",
            description="{{ request }} %(email)s %s {% raw %}",
            escalation="{{ routes }}",
        )
    )
    for body in texts(notice):
        assert hostile_url in body
        assert "https://evil.example/%(org)s/{{ config }}" in body
        assert "{{ request }} %(email)s %s {% raw %}" in body
        assert "{{ routes }}" in body
        assert "49" not in body and "xxx" not in body


def test_control_characters_cannot_forge_lines_or_hide_part_of_a_url() -> None:
    notice = render(
        facts(
            urls=("https://evil.example/a\r\n  [DSA 16(2)(d)] forged\x1b[2K\u202egpj.exe",),
            description="an image\n\n5. Statement of good faith\x00\x07",
            recipient=recipient(jurisdiction="JP"),
        )
    )
    shown = "https://evil.example/a  [DSA 16(2)(d)] forged[2Kgpj.exe"
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", notice.body)
    assert f"\n  - {shown}\n" in notice.body
    forged = [line for line in notice.body.splitlines() if line.startswith("  [DSA 16(2)(d)]")]
    assert len(forged) == 1  # the notice's own element, nothing from the URL
    assert notice.body.count("\n5. Statement of good faith\n") == 1
    assert notice.fields["urls"] == [shown]


def test_reminders_reuploads_and_escalations_say_what_they_are() -> None:
    first = render(facts(language="de", recipient=recipient(languages=("de",))))
    later = render(
        facts(
            language="de",
            recipient=recipient(languages=("de",)),
            resend=3,
            cites=("SE-20260401-0009",),
            escalation="Example Platform did not remove it within 24 hours",
        )
    )
    say = translations("de").gettext
    assert later.subject.startswith(say("Reminder %(n)s:") % {"n": 3})
    assert say("Escalation:") in later.subject
    assert say("8. Earlier notices") in later.body
    assert "SE-20260401-0009" in later.body
    assert "Example Platform did not remove it within 24 hours" in later.body
    assert (
        later.english_body and "This is reminder 3 of notice SE-20260502-0001" in later.english_body
    )
    assert say("8. Earlier notices") not in first.body
    assert not first.subject.startswith(say("Reminder %(n)s:") % {"n": 1})


def test_fields_carry_the_same_facts_structured_and_json_ready() -> None:
    notice = render(facts(copyright_holder=True))
    fields = json.loads(json.dumps(notice.fields))
    assert fields["urls"] == list(facts().urls)
    assert fields["hashes"] == {"sha256": "ab" * 32, "md5": "cd" * 16, "pdq": "ef" * 32}
    assert [r["route"] for r in fields["legal_basis"]] == ["us_take_it_down", "us_dmca_512c3"]
    assert fields["removal_hours"] == 48
    assert fields["evidence"]["package_id"] == 4711
    assert fields["requester"]["email"] == "takedown@center.example"
    assert fields["category"] == "synthetic"
    assert fields["reference"] == "SE-20260502-0001"


def test_templates_exist_for_every_part_of_a_notice() -> None:
    for name in TEMPLATES:
        assert (NOTICES / "templates" / name).is_file(), name


@pytest.mark.parametrize("language", sorted(set(LANGUAGES) - {ENGLISH}))
def test_every_language_has_a_complete_catalog_for_every_message_of_the_templates_and_laws(
    language: str,
) -> None:
    wanted = extracted_messages()
    path = NOTICES / "locale" / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    assert path.is_file(), f"no catalog for {language}"
    with path.open("rb") as po:
        catalog = read_po(po, locale=language)
    have = {m.id: m for m in catalog if m.id}
    assert set(have) == wanted, "catalog out of date: run the pybabel update in docs/notices.md"
    fields = re.compile(r"%\(\w+\)s")
    for message_id in wanted:
        message = have[message_id]
        assert message.string and not message.fuzzy, message_id
        assert sorted(fields.findall(message.string)) == sorted(fields.findall(message_id))
        assert "%" not in fields.sub("", message.string), message_id
    assert not list(catalog.check())


def extracted_messages() -> set[str]:
    """Every catalog message, found as translators find them: pybabel with the package's
    babel.cfg (templates, and legal.py and render.py through their ``N_`` marks)."""
    with (NOTICES / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    root = str(NOTICES)
    return {message for _, _, message, *_ in extract_from_dir(root, method_map, options_map)}


def test_a_page_declares_its_language_by_html_lang_else_by_header() -> None:
    from safeeye.takedown.notices.language import declared_language

    assert declared_language(None, b"<!doctype html><HTML class=x LANG='ko-KR'>") == "ko-kr"
    assert declared_language({"Content-Language": "ru, en"}, b"<html><body>") == "ru"
    assert declared_language({"content-language": " "}, b"<html lang=>") is None
    assert declared_language(None, b"<p>no html element</p>") is None
    assert choose_language(("en", "ko"), declared_language(None, b'<html lang="ko">')) == "ko"
