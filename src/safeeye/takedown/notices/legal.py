"""The legal routes a notice can rest on, as data, and the choice of routes for a recipient."""

from __future__ import annotations

from dataclasses import dataclass

from safeeye.errors import SafeEyeError
from safeeye.takedown.model import Category, RecipientInfo


def N_(message: str) -> str:
    """Mark a catalog message (``pybabel extract -k N_``); it is translated when rendered."""
    return message


class UnknownRouteError(SafeEyeError):
    """A recipient names a legal route this version does not know."""

    code = "legal_route"


@dataclass(frozen=True)
class Element:
    """One thing a valid notice under a route must carry: its marker, printed alike in every
    language (a recipient's reviewer and the tests find it by that), and its sentence, a
    catalog message with ``%(name)s`` fields."""

    marker: str
    text: str


@dataclass(frozen=True)
class LegalRoute:
    """A law (or policy) a notice invokes: where it applies, what a valid notice under it
    must carry, and the removal duty it sets, if any."""

    key: str
    jurisdiction: str  # "KR", "US", "EU", or "*" for anywhere
    citation: str  # English, for structured fields and the docs
    title: str  # catalog message: the law's name as the notice prints it
    elements: tuple[Element, ...]
    source: str  # where the primary text was checked
    terms: str = "general"  # whose words name the category: "kr", "us" or "general"
    removal_hours: float | None = None  # the law's fixed removal deadline
    duty: str | None = None  # catalog message: the recipient's duty under the law
    scope: str | None = None  # catalog message: said when the recipient is outside the reach
    categories: frozenset[Category] = frozenset(Category)
    needs_copyright: bool = False  # only when the person depicted holds the copyright

    def applies(self, category: Category, copyright_holder: bool) -> bool:
        """Whether this route fits content of ``category``."""
        return category in self.categories and (copyright_holder or not self.needs_copyright)

    def covers(self, jurisdiction: str | None) -> bool:
        """Whether a recipient in ``jurisdiction`` is inside this law's home jurisdiction."""
        code = (jurisdiction or "").upper()
        if self.jurisdiction == "*":
            return True
        if self.jurisdiction == "EU":
            return code in EU_MEMBER_STATES
        return code == self.jurisdiction


# "EL" is the EU's own code for Greece; "EU" names a recipient established anywhere in it.
EU_MEMBER_STATES = frozenset(
    {
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "EL",
        "ES",
        "EU",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    }
)
# DSA art. 16 binds providers of hosting services; search engines and registrars are not ones.
HOSTING_SERVICE_KINDS = frozenset({"platform", "messaging", "image_host", "hosting"})
# The TAKE IT DOWN Act binds covered platforms: services that are forums for user content.
COVERED_PLATFORM_KINDS = frozenset({"platform", "messaging", "image_host"})

ROUTES: dict[str, LegalRoute] = {
    route.key: route
    for route in (
        LegalRoute(
            key="kr_tba_22_5",
            jurisdiction="KR",
            citation="Telecommunications Business Act (KR) art. 22-5; Enforcement Decree art. 30-5",
            title=N_(
                "Telecommunications Business Act of Korea (전기통신사업법), art. 22-5, and its "
                "Enforcement Decree, art. 30-5"
            ),
            elements=(
                Element(
                    "TBA 22-5(1)",
                    N_(
                        "The item is %(category)s, distributed openly through your service: "
                        "material that art. 22-5(1) obliges a value-added telecommunications "
                        "service provider to delete, or to block access to, once it is reported."
                    ),
                ),
                Element(
                    "TBA Decree 30-5(1)",
                    N_(
                        "We make this request as %(org)s (%(authority)s). Art. 30-5(1) of the "
                        "Enforcement Decree lets the person depicted, the Korea Women's Human "
                        "Rights Institute and organisations designated by the regulator request "
                        "deletion."
                    ),
                ),
                Element(
                    "TBA location",
                    N_(
                        "Where the material is distributed: the exact URL(s), the page and the "
                        "times under %(item)s."
                    ),
                ),
            ),
            source="https://www.law.go.kr/법령/전기통신사업법",
            terms="kr",
            duty=N_(
                "Art. 22-5(1) of the Telecommunications Business Act requires the provider to "
                "delete the material, or block access to it, without delay once it learns of it "
                "through a report or request."
            ),
            scope=N_(
                "We rely on this Act insofar as your service is offered to users in Korea; it "
                "binds foreign providers too."
            ),
        ),
        LegalRoute(
            key="kr_spa_14",
            jurisdiction="KR",
            citation="Act on Special Cases Concerning the Punishment of Sexual Crimes (KR) art. 14",
            title=N_(
                "Act on Special Cases Concerning the Punishment of Sexual Crimes of Korea "
                "(성폭력범죄의 처벌 등에 관한 특례법), art. 14"
            ),
            elements=(
                Element(
                    "SPA 14",
                    N_(
                        "The item is a recording of a person's body, of a kind that can arouse "
                        "sexual desire or shame, made against the will of the person filmed, or "
                        "distributed against their will even where the filming was agreed to "
                        "or done by that person. "
                        "Art. 14(2) makes distributing it, or a copy of it, a crime."
                    ),
                ),
            ),
            source="https://www.law.go.kr/법령/성폭력범죄의처벌등에관한특례법/제14조",
            terms="kr",
            categories=frozenset({Category.ILLEGALLY_FILMED}),
        ),
        LegalRoute(
            key="kr_spa_14_2",
            jurisdiction="KR",
            citation="Act on Special Cases Concerning the Punishment of Sexual Crimes (KR) "
            "art. 14-2",
            title=N_(
                "Act on Special Cases Concerning the Punishment of Sexual Crimes of Korea "
                "(성폭력범죄의 처벌 등에 관한 특례법), art. 14-2"
            ),
            elements=(
                Element(
                    "SPA 14-2",
                    N_(
                        "The item is an image, video or sound recording of a real person's face, "
                        "body or voice, edited, synthesised or processed into a sexual form "
                        "against their will. Art. 14-2(2) makes distributing it, or a copy of "
                        "it, a crime, even where the editing was once agreed to."
                    ),
                ),
            ),
            source="https://www.law.go.kr/법령/성폭력범죄의처벌등에관한특례법/제14조의2",
            terms="kr",
            categories=frozenset({Category.SYNTHETIC}),
        ),
        LegalRoute(
            key="kr_youth_11",
            jurisdiction="KR",
            citation="Act on the Protection of Children and Youth against Sex Offenses (KR) "
            "arts. 2(5), 11",
            title=N_(
                "Act on the Protection of Children and Youth against Sex Offenses of Korea "
                "(아동·청소년의 성보호에 관한 법률), arts. 2(5) and 11"
            ),
            elements=(
                Element(
                    "Youth Act 2(5)",
                    N_(
                        "The item shows a child or adolescent, or a person or representation "
                        "clearly recognisable as one, in sexual conduct: sexual exploitation "
                        "material of children and adolescents under art. 2(5)."
                    ),
                ),
                Element(
                    "Youth Act 11",
                    N_(
                        "Art. 11 makes producing, distributing, offering, displaying, possessing "
                        "or viewing such material a crime."
                    ),
                ),
            ),
            source="https://www.law.go.kr/법령/아동·청소년의성보호에관한법률/제11조",
            terms="kr",
            categories=frozenset({Category.MINOR}),
        ),
        LegalRoute(
            key="us_take_it_down",
            jurisdiction="US",
            citation="TAKE IT DOWN Act (Pub. L. 119-12) sec. 3; 47 U.S.C. 223a",
            title=N_("TAKE IT DOWN Act (Public Law 119-12), sec. 3 (47 U.S.C. 223a)"),
            elements=(
                Element(
                    "47 USC 223a(a)(1)(B)(i)",
                    N_(
                        "Signature: /s/ %(signatory)s, for %(org)s, authorized to act on behalf "
                        "of the identifiable individual depicted."
                    ),
                ),
                Element(
                    "47 USC 223a(a)(1)(B)(ii)",
                    N_(
                        "The intimate visual depiction, and information sufficient to locate "
                        "it, are given under %(item)s (exact URL(s), page, hashes)."
                    ),
                ),
                Element(
                    "47 USC 223a(a)(1)(B)(iii)",
                    N_(
                        "The identifiable individual has a good-faith belief that this intimate "
                        "visual depiction (%(category)s) is not consensual: they have confirmed "
                        "to us that it depicts them and that they did not consent to its "
                        "publication."
                    ),
                ),
                Element(
                    "47 USC 223a(a)(1)(B)(iv)",
                    N_(
                        "Contact for the individual's authorized representative: %(email)s, "
                        "%(phone)s, %(address)s."
                    ),
                ),
            ),
            source="https://uscode.house.gov/view.xhtml?req=granuleid:USC-prelim-title47-section223a",
            terms="us",
            removal_hours=48.0,
            duty=N_(
                "Under 47 U.S.C. 223a(a)(3), a covered platform must remove it as soon as "
                "possible and no later than 48 hours after receiving this request, and make "
                "reasonable efforts to identify and remove known identical copies."
            ),
            scope=N_(
                "We rely on this Act insofar as your service is a covered platform serving the "
                "public in the United States."
            ),
        ),
        LegalRoute(
            key="us_dmca_512c3",
            jurisdiction="US",
            citation="Digital Millennium Copyright Act, 17 U.S.C. 512(c)(3)(A)",
            title=N_("Digital Millennium Copyright Act, 17 U.S.C. 512(c)(3)(A)"),
            elements=(
                Element(
                    "17 USC 512(c)(3)(A)(i)",
                    N_(
                        "Signature: /s/ %(signatory)s, for %(org)s, authorized to act on behalf "
                        "of the copyright owner."
                    ),
                ),
                Element(
                    "17 USC 512(c)(3)(A)(ii)",
                    N_(
                        "Copyrighted work: the photograph or video reproduced at the URL(s) "
                        "under %(item)s, made by the person depicted, who owns its "
                        "copyright."
                    ),
                ),
                Element(
                    "17 USC 512(c)(3)(A)(iii)",
                    N_(
                        "Infringing material, to be removed or access to it disabled, and where "
                        "to find it: the exact URL(s) and the page under %(item)s."
                    ),
                ),
                Element(
                    "17 USC 512(c)(3)(A)(iv)",
                    N_("Contact: %(org)s, %(address)s, telephone %(phone)s, e-mail %(email)s."),
                ),
                Element(
                    "17 USC 512(c)(3)(A)(v)",
                    N_(
                        "We believe in good faith that this use of the material is authorized "
                        "neither by the copyright owner, nor by its agent, nor by the law."
                    ),
                ),
                Element(
                    "17 USC 512(c)(3)(A)(vi)",
                    N_(
                        "The information in this notice is accurate, and we state under penalty "
                        "of perjury that we are authorized to act on behalf of the owner of the "
                        "exclusive right that is infringed."
                    ),
                ),
            ),
            source="https://www.law.cornell.edu/uscode/text/17/512",
            terms="us",
            needs_copyright=True,
        ),
        LegalRoute(
            key="eu_dsa_16",
            jurisdiction="EU",
            citation="Digital Services Act (Regulation (EU) 2022/2065) art. 16",
            title=N_("Digital Services Act (Regulation (EU) 2022/2065), art. 16"),
            elements=(
                Element(
                    "DSA 16(2)(a)",
                    N_(
                        "Why the content is illegal: it is %(category)s, made public without the "
                        "consent of the person depicted. %(illegality)s"
                    ),
                ),
                Element(
                    "DSA 16(2)(b)",
                    N_(
                        "Exact electronic location: the exact URL(s) under %(item)s, with "
                        "the page, the hashes and the times, which identify the item."
                    ),
                ),
                Element(
                    "DSA 16(2)(c)",
                    N_("Name and e-mail address of the sender: %(org)s, %(email)s."),
                ),
                Element(
                    "DSA 16(2)(d)",
                    N_(
                        "We confirm our bona fide belief that the information and allegations in "
                        "this notice are accurate and complete."
                    ),
                ),
            ),
            source="https://eur-lex.europa.eu/eli/reg/2022/2065/oj",
            duty=N_(
                "Under art. 16(4) to (6) of the Digital Services Act, please confirm receipt, "
                "decide in a timely, diligent, non-arbitrary and objective manner, and tell us "
                "your decision and the redress available."
            ),
            scope=N_(
                "We rely on this Regulation insofar as your hosting service is offered to "
                "recipients in the European Union."
            ),
        ),
        LegalRoute(
            key="abuse_policy",
            jurisdiction="*",
            citation="the recipient's acceptable-use and abuse policy",
            title=N_("Your acceptable-use and abuse policy"),
            elements=(
                Element(
                    "AUP breach",
                    N_(
                        "The item is %(category)s, published without the consent of the person "
                        "depicted. This breaches the acceptable-use policies of hosting "
                        "providers and platforms, and is unlawful in many countries."
                    ),
                ),
                Element(
                    "AUP location",
                    N_("The exact URL(s), the page and the times are given under %(item)s."),
                ),
                Element("AUP contact", N_("Sender: %(org)s, %(email)s.")),
                Element(
                    "AUP good faith",
                    N_("We state in good faith that this notice is accurate and complete."),
                ),
            ),
            source="(no statute: the recipient's own terms)",
        ),
    )
}

# The category in the words of the law a route rests on.
CATEGORY_TERMS: dict[tuple[str, Category], str] = {
    ("kr", Category.ILLEGALLY_FILMED): N_("illegally filmed material (불법촬영물)"),
    ("kr", Category.SYNTHETIC): N_(
        "false video material (허위영상물): an edited, synthesised or processed sexual image of "
        "a real person"
    ),
    ("kr", Category.MINOR): N_(
        "sexual exploitation material of children and adolescents (아동·청소년성착취물)"
    ),
    ("us", Category.ILLEGALLY_FILMED): N_(
        "an intimate visual depiction of an identifiable individual"
    ),
    ("us", Category.SYNTHETIC): N_(
        "a digital forgery: an intimate visual depiction of an identifiable individual made or "
        "altered with software or AI"
    ),
    ("us", Category.MINOR): N_("an intimate visual depiction of a minor"),
    ("general", Category.ILLEGALLY_FILMED): N_("an intimate image of a real person"),
    ("general", Category.SYNTHETIC): N_(
        "a synthetic (deepfake) sexual image of a real, identifiable person"
    ),
    ("general", Category.MINOR): N_("sexual material involving a minor"),
}

# DSA 16(2)(a): why such content is illegal in the Union.
ILLEGALITY_EU: dict[Category, str] = {
    Category.ILLEGALLY_FILMED: N_(
        "Making such material accessible to the public without consent is an offence that "
        "Directive (EU) 2024/1385, art. 5(1)(a), requires every Member State to punish."
    ),
    Category.SYNTHETIC: N_(
        "Producing or altering material to make it appear that a person engages in sexually "
        "explicit activities, and making it public without their consent, is an offence that "
        "Directive (EU) 2024/1385, art. 5(1)(b), requires every Member State to punish."
    ),
    Category.MINOR: N_(
        "Distributing child sexual abuse material is an offence under Directive 2011/93/EU, art. 5."
    ),
}


def route(key: str) -> LegalRoute:
    """The route named ``key``; raises ``UnknownRouteError``."""
    try:
        return ROUTES[key]
    except KeyError:
        known = ", ".join(sorted(ROUTES))
        raise UnknownRouteError(f"unknown legal route {key!r} (known: {known})") from None


def routes_for(
    recipient: RecipientInfo, category: Category, copyright_holder: bool = False
) -> tuple[LegalRoute, ...]:
    """The routes a notice to ``recipient`` about content of ``category`` rests on, strongest
    first: the recipient's own list if it has one, else those of its jurisdiction; either way
    only the routes that fit the category (SPA art. 14 for filmed, 14-2 for synthetic, the
    youth act for a minor; DMCA only for a copyright holder). Never empty."""
    if recipient.legal_routes:
        candidates = [route(key) for key in recipient.legal_routes]
    else:
        candidates = [ROUTES[key] for key in _by_jurisdiction(recipient)]
    fitting = tuple(r for r in candidates if r.applies(category, copyright_holder))
    return fitting or (ROUTES["abuse_policy"],)


def _by_jurisdiction(recipient: RecipientInfo) -> list[str]:
    code = (recipient.jurisdiction or "").upper()
    if code == "KR":
        return ["kr_tba_22_5", "kr_spa_14", "kr_spa_14_2", "kr_youth_11"]
    if code == "US":
        return ["us_take_it_down", "us_dmca_512c3"]
    if code in EU_MEMBER_STATES:
        return ["eu_dsa_16"]
    # Elsewhere the host's own policy, and the EU and US laws where their reach is the
    # service's users, not its seat: DSA for hosting services, TAKE IT DOWN for platforms.
    keys = ["abuse_policy"]
    if recipient.kind in HOSTING_SERVICE_KINDS:
        keys.append("eu_dsa_16")
    if recipient.kind in COVERED_PLATFORM_KINDS:
        keys.append("us_take_it_down")
    return keys
