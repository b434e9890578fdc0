"""The recipients directory: who gets deletion requests, and the ladder for one sighting.

Administrators manage the directory; counselors, reviewers and auditors read it. It starts
from the shipped defaults (``directory.json``, loaded by ``load_defaults``), and grows by
itself with the abuse contacts RDAP names for hosts that no entry covers (``origin="rdap"``).
An administrator's edit of a shipped entry makes it theirs (``origin="admin"``): later
defaults never overwrite it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import pairwise
from typing import Any, overload

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from safeeye.db.models import Recipient, Sighting
from safeeye.errors import ConflictError, NotFoundError, ValidationError
from safeeye.takedown.model import RecipientInfo, RecipientKind
from safeeye.takedown.rdap import AbuseContact, RdapClient, RdapError
from safeeye.work import Role, Work

log = logging.getLogger(__name__)

CONNECTOR_NAMES = ("api", "email", "email-digest", "stopncii", "export")
#: Connectors that reach their recipient at an e-mail address.
EMAIL_CONNECTORS = frozenset({"email", "email-digest"})
ORIGINS = ("default", "admin", "rdap")
#: Hosts an ``http://`` address may name (a test's local receiver); anything else is https.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
MAX_DEADLINE_HOURS = 24.0 * 365
DEFAULT_JURISDICTION = "KR"
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._:@+-]{0,63}$")
TOKEN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$")
#: ISO 639-1: the two-letter language codes.
_ISO_639_1 = """aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs
cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht
hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg
li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa
pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti
tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"""
ISO_639_1 = frozenset(_ISO_639_1.split())

READERS = (Role.COUNSELOR, Role.REVIEWER, Role.AUDITOR, Role.SYSTEM)


@dataclass(frozen=True)
class RecipientEntry(RecipientInfo):
    """A directory entry: what notices and connectors need (``RecipientInfo``), and what the
    directory keeps about it."""

    domains: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    origin: str = "admin"  # default | admin | rdap
    enabled: bool = True
    escalates_to: str | None = None  # the key of the next step of the ladder
    source: str | None = None  # where a shipped entry's contact comes from


@dataclass(frozen=True)
class Ladder:
    """Who to ask, in order, about one sighting: the platform, else the hosting network and
    the registrar, then the regulator. ``gaps`` says why a step is missing (an error code)."""

    steps: tuple[RecipientEntry, ...]
    gaps: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[RecipientEntry]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    @overload
    def __getitem__(self, index: int) -> RecipientEntry: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[RecipientEntry, ...]: ...
    def __getitem__(self, index: int | slice) -> RecipientEntry | tuple[RecipientEntry, ...]:
        return self.steps[index]


@dataclass(frozen=True)
class DefaultsReport:
    """What ``load_defaults`` did, by key."""

    inserted: tuple[str, ...]
    refreshed: tuple[str, ...]
    unchanged: tuple[str, ...]
    kept: tuple[str, ...]  # edited by an administrator: left as they are


# Validation: pure functions, each raising ValidationError with what to fix.


def host_name(value: str, what: str = "domain") -> str:
    """``value`` as a lowercase ASCII host name (IDNA), or ValidationError."""
    text = str(value).strip().lower().rstrip(".")
    try:
        text = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError as exc:
        raise ValidationError(f"{what} {value[:100]!r} is not a host name") from exc
    labels = text.split(".")
    if (
        len(labels) < 2
        or len(text) > 253
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValidationError(
            f"{what} {value[:100]!r} is not a host name (like example.com; it covers its "
            "subdomains)"
        )
    return text


def network(value: str) -> str:
    """``value`` as a canonical CIDR network, or ValidationError."""
    try:
        return str(ipaddress.ip_network(str(value).strip(), strict=False))
    except ValueError as exc:
        raise ValidationError(f"network {value[:100]!r} is not a CIDR network") from exc


def email_address(value: str) -> str:
    """``value`` as a plain e-mail address (no display name), or ValidationError."""
    text = str(value).strip()
    local, at, domain = text.rpartition("@")
    if not at or not _EMAIL_LOCAL.match(local) or ".." in local:
        raise ValidationError(f"{text[:100]!r} is not an e-mail address")
    return f"{local}@{host_name(domain, 'e-mail domain')}"


def web_address(value: str) -> str:
    """An https URL (plain http only to a loopback host, for tests), or ValidationError."""
    text = str(value).strip()
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise ValidationError(f"{text[:100]!r} is not a URL") from exc
    if url.scheme != "https" and not (url.scheme == "http" and url.host in LOOPBACK_HOSTS):
        raise ValidationError(f"{text[:100]!r} must be an https:// URL")
    if url.userinfo or not url.host:
        raise ValidationError(f"{text[:100]!r} is not a URL with a host and no credentials")
    return text


def check_address(connector: str, address: str | None) -> str | None:
    """The address a connector reaches a recipient at: an e-mail for ``email`` and
    ``email-digest`` (required), an https URL for the others (the regulator's endpoint may be
    set later)."""
    if connector not in CONNECTOR_NAMES:
        raise ValidationError(f"connector must be one of {', '.join(CONNECTOR_NAMES)}")
    if address is None or not str(address).strip():
        if connector in EMAIL_CONNECTORS:
            raise ValidationError("an email recipient needs an e-mail address")
        return None
    return email_address(address) if connector in EMAIL_CONNECTORS else web_address(address)


def languages_of(values: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    codes: list[str] = []
    for value in values:
        code = str(value).strip().lower()
        if code not in ISO_639_1:
            raise ValidationError(f"language {value[:20]!r} is not an ISO 639-1 code (ko, en...)")
        if code not in codes:
            codes.append(code)
    if not codes:
        raise ValidationError("give at least one language")
    return tuple(codes)


def deadline_of(hours: float) -> float:
    try:
        value = float(hours)
    except (TypeError, ValueError) as exc:
        raise ValidationError("the deadline must be a number of hours") from exc
    if not 0 < value <= MAX_DEADLINE_HOURS:
        raise ValidationError(
            f"the deadline must be more than 0 and at most {MAX_DEADLINE_HOURS:g} hours"
        )
    return value


def jurisdiction_of(value: str | None) -> str | None:
    if value is None or not str(value).strip():
        return None
    code = str(value).strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise ValidationError(
            f"jurisdiction {value[:20]!r} must be a two-letter country code (or EU)"
        )
    return code


def kind_of(value: str) -> str:
    try:
        return RecipientKind(str(value).strip().lower()).value
    except ValueError as exc:
        kinds = ", ".join(k.value for k in RecipientKind)
        raise ValidationError(f"kind must be one of {kinds}") from exc


def tokens_of(values: tuple[str, ...] | list[str], what: str) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(str(v).strip().lower() for v in values))
    for token in out:
        if not TOKEN_PATTERN.match(token):
            raise ValidationError(f"{what} {token[:40]!r} must be a short token like kr_tba_22_5")
    return out


def split_covers(values: tuple[str, ...] | list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Domains and networks from one list (a value with a ``/`` or an IP is a network)."""
    domains: list[str] = []
    networks: list[str] = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            if "/" in part or _is_ip(part):
                item, into = network(part), networks
            else:
                item, into = host_name(part), domains
            if item not in into:
                into.append(item)
    return tuple(domains), tuple(networks)


def key_of(value: str) -> str:
    key = str(value).strip().lower()
    if not KEY_PATTERN.match(key):
        raise ValidationError(
            f"key {value[:70]!r}: 1-64 of a-z, 0-9 and . _ : @ + -, starting with a letter or digit"
        )
    return key


def name_of(value: str) -> str:
    name = " ".join(str(value).split())
    if not name or len(name) > 200:
        raise ValidationError("a name of 1 to 200 characters is needed")
    return name


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# Services.


def add_recipient(
    work: Work,
    name: str,
    *,
    kind: str,
    connector: str,
    address: str | None = None,
    covers: tuple[str, ...] = (),
    languages: tuple[str, ...] = ("en",),
    deadline_hours: float = 24.0,
    jurisdiction: str | None = None,
    legal_routes: tuple[str, ...] = (),
    requires: tuple[str, ...] = (),
    escalates_to: str | None = None,
    key: str | None = None,
) -> RecipientEntry:
    """Add a recipient an administrator names; ``key`` defaults to a slug of the name."""
    work.require(Role.ADMIN, action="manage recipients")
    name = name_of(name)
    key = key_of(key if key else _slug(name))
    session = work.session
    if session.scalar(select(Recipient.id).where(Recipient.key == key)) is not None:
        raise ConflictError(f"a recipient with key {key!r} exists: update it instead")
    domains, networks = split_covers(covers)
    row = Recipient(
        key=key,
        name=name,
        kind=kind_of(kind),
        jurisdiction=jurisdiction_of(jurisdiction),
        connector=connector,
        address=check_address(connector, address),
        languages=list(languages_of(languages)),
        deadline_hours=deadline_of(deadline_hours),
        covers=_covers(domains, networks),
        legal_routes=list(tokens_of(legal_routes, "legal route")),
        requires=list(tokens_of(requires, "requirement")),
        escalates_to_id=_ladder_next(session, escalates_to, key),
        origin="admin",
        enabled=True,
    )
    session.add(row)
    session.flush()
    work.audit(
        "recipient.add", "recipient", row.id, {"key": key, "kind": row.kind, "connector": connector}
    )
    return entry_of(session, row)


def update_recipient(
    work: Work,
    recipient: str | int,
    *,
    name: str | None = None,
    kind: str | None = None,
    connector: str | None = None,
    address: str | None = None,
    covers: tuple[str, ...] | None = None,
    languages: tuple[str, ...] | None = None,
    deadline_hours: float | None = None,
    jurisdiction: str | None = None,
    legal_routes: tuple[str, ...] | None = None,
    requires: tuple[str, ...] | None = None,
    escalates_to: str | None = None,
    enabled: bool | None = None,
) -> RecipientEntry:
    """Change what is given (``None``: leave it; ``""`` clears an address, a jurisdiction or
    the next step). A shipped entry an administrator changes becomes theirs."""
    work.require(Role.ADMIN, action="manage recipients")
    session = work.session
    row = _find(session, recipient)
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name_of(name)
    if kind is not None:
        changes["kind"] = kind_of(kind)
    new_connector = connector if connector is not None else row.connector
    if connector is not None or address is not None:
        given = address if address is not None else row.address
        changes["connector"] = new_connector
        changes["address"] = check_address(new_connector, given)
    if covers is not None:
        changes["covers"] = _covers(*split_covers(covers))
    if languages is not None:
        changes["languages"] = list(languages_of(languages))
    if deadline_hours is not None:
        changes["deadline_hours"] = deadline_of(deadline_hours)
    if jurisdiction is not None:
        changes["jurisdiction"] = jurisdiction_of(jurisdiction)
    if legal_routes is not None:
        changes["legal_routes"] = list(tokens_of(legal_routes, "legal route"))
    if requires is not None:
        changes["requires"] = list(tokens_of(requires, "requirement"))
    if escalates_to is not None:
        changes["escalates_to_id"] = _ladder_next(session, escalates_to, row.key, row.id)
    if enabled is not None:
        changes["enabled"] = bool(enabled)
    changed = sorted(k for k, v in changes.items() if getattr(row, k) != v)
    for field_name in changed:
        setattr(row, field_name, changes[field_name])
    if changed:
        if row.origin == "default":
            row.origin = "admin"
        session.flush()
        work.audit("recipient.update", "recipient", row.id, {"key": row.key, "changed": changed})
    return entry_of(session, row)


def list_recipients(
    work: Work, *, kind: str | None = None, enabled: bool | None = None
) -> list[RecipientEntry]:
    """The directory, by key; ``kind`` and ``enabled`` narrow it."""
    work.require(*READERS, action="read recipients")
    query = select(Recipient).order_by(Recipient.key)
    if kind is not None:
        query = query.where(Recipient.kind == kind_of(kind))
    if enabled is not None:
        query = query.where(Recipient.enabled == enabled)
    rows = list(work.session.scalars(query))
    keys = _keys_by_id(work.session)
    return [entry_of(work.session, row, keys) for row in rows]


def show_recipient(work: Work, recipient: str | int) -> RecipientEntry:
    """One recipient by key or id."""
    work.require(*READERS, action="read recipients")
    return entry_of(work.session, _find(work.session, recipient))


def load_defaults(work: Work) -> DefaultsReport:
    """Insert the shipped entries, or refresh those still as shipped (``origin="default"``);
    entries an administrator added or edited under a shipped key are kept as they are.
    Running it again changes nothing."""
    work.require(Role.SYSTEM, action="load the default recipients")
    session = work.session
    shipped = shipped_entries()
    report: dict[str, list[str]] = {"inserted": [], "refreshed": [], "unchanged": [], "kept": []}
    rows: dict[str, Recipient] = {}
    for entry in shipped:
        row = session.scalar(select(Recipient).where(Recipient.key == entry.key))
        if row is not None and row.origin != "default":
            report["kept"].append(entry.key)
            continue
        fields = _row_fields(entry)
        if row is None:
            row = Recipient(key=entry.key, origin="default", enabled=True, **fields)
            session.add(row)
            report["inserted"].append(entry.key)
        elif any(getattr(row, k) != v for k, v in fields.items()):
            for field_name, value in fields.items():
                setattr(row, field_name, value)
            report["refreshed"].append(entry.key)
        else:
            report["unchanged"].append(entry.key)
        rows[entry.key] = row
    session.flush()
    for entry in shipped:  # the ladder, once every shipped row has an id
        row = rows.get(entry.key)
        if row is None or entry.escalates_to is None:
            continue
        target = rows.get(entry.escalates_to) or session.scalar(
            select(Recipient).where(Recipient.key == entry.escalates_to)
        )
        next_id = target.id if target is not None else None
        if row.escalates_to_id != next_id:
            row.escalates_to_id = next_id
            if entry.key in report["unchanged"]:
                report["unchanged"].remove(entry.key)
                report["refreshed"].append(entry.key)
    if report["inserted"] or report["refreshed"]:
        session.flush()
        work.audit(
            "recipients.defaults",
            "recipient",
            None,
            {"inserted": len(report["inserted"]), "refreshed": len(report["refreshed"])},
        )
    return DefaultsReport(**{k: tuple(v) for k, v in report.items()})


def find_recipients(
    work: Work,
    target: Sighting | int | str,
    server_ip: str | None = None,
    *,
    jurisdiction: str = DEFAULT_JURISDICTION,
    rdap: RdapClient | None = None,
) -> Ladder:
    """The ladder for a sighting (a row, its id, or a URL with the ``server_ip`` it came from).

    First the platform whose domains cover the URL's host (the media URL's, else the final
    URL's, else the page's). For a host no entry covers: the hosting network (an entry whose
    networks hold ``server_ip``, else the network's abuse contact by RDAP) and the domain's
    registrar (by RDAP). Then the regulator of ``jurisdiction``. Contacts found by RDAP become
    recipients (``origin="rdap"``, e-mail) once, and each step escalates to the next.
    """
    work.require(Role.REVIEWER, Role.COUNSELOR, Role.SYSTEM, action="find recipients")
    session = work.session
    urls, server_ip = _locations(session, target, server_ip)
    hosts = [h for h in (_host_of(u) for u in urls) if h]
    steps: list[Recipient] = []
    gaps: list[str] = []
    directory = list(session.scalars(select(Recipient).where(Recipient.enabled.is_(True))))
    platform = next((r for r in (_covering(directory, h) for h in hosts) if r is not None), None)
    if platform is not None:
        steps.append(platform)
    else:
        owned = rdap is None
        client = rdap or RdapClient(work.app.settings)
        try:
            steps += _hosting_and_registrar(work, client, directory, hosts, server_ip, gaps)
        finally:
            if owned:
                client.close()
    regulator = next(
        (
            r
            for r in sorted(directory, key=lambda r: r.id)
            if r.kind == RecipientKind.REGULATOR and r.jurisdiction == jurisdiction.upper()
        ),
        None,
    )
    if regulator is not None:
        steps.append(regulator)
    else:
        gaps.append(f"regulator: none enabled for {jurisdiction.upper()}")
    ladder = list(dict.fromkeys(steps))
    for here, after in pairwise(ladder):
        if here.origin == "rdap" and here.escalates_to_id is None:
            here.escalates_to_id = after.id  # the default way up; admins may change it
    session.flush()
    keys = _keys_by_id(session)
    return Ladder(tuple(entry_of(session, r, keys) for r in ladder), tuple(gaps))


def _hosting_and_registrar(
    work: Work,
    client: RdapClient,
    directory: list[Recipient],
    hosts: list[str],
    server_ip: str | None,
    gaps: list[str],
) -> list[Recipient]:
    found: list[Recipient] = []
    session = work.session
    server_ip = server_ip or next((h for h in hosts if _is_ip(h)), None)  # http://IP/... URLs
    if server_ip:
        owner = _network_owner(directory, server_ip)
        if owner is not None:
            found.append(owner)
        else:
            try:
                found.append(_rdap_recipient(work, client.network_contact(session, server_ip)))
            except RdapError as exc:
                log.info("no hosting network contact by RDAP: %s", exc.code)
                gaps.append(f"hosting: {exc.as_text()}")
    else:
        gaps.append("hosting: no server address known")
    domain = next((h for h in hosts if not _is_ip(h)), None)
    if domain is None:
        gaps.append("registrar: no domain name")
        return [r for r in found if r.enabled]
    try:
        found.append(_rdap_recipient(work, client.registrar_contact(session, domain)))
    except RdapError as exc:
        log.info("no registrar contact by RDAP: %s", exc.code)
        gaps.append(f"registrar: {exc.as_text()}")
    return [r for r in found if r.enabled]


def _rdap_recipient(work: Work, contact: AbuseContact) -> Recipient:
    """The recipient for an RDAP abuse contact, created the first time it is named."""
    session = work.session
    try:
        email = email_address(contact.email)
    except ValidationError as exc:
        raise RdapError("the abuse e-mail RDAP names is malformed", code="rdap_no_contact") from exc
    key = _rdap_key(contact.kind, email)
    row = session.scalar(select(Recipient).where(Recipient.key == key))
    if row is not None:
        return row
    what = "network" if contact.kind == RecipientKind.HOSTING else "registrar"
    networks = [n for n in contact.networks if _valid_network(n)][:32]
    row = Recipient(
        key=key,
        name=name_of(f"{_printable(contact.organisation) or email} ({what} abuse)"[:200]),
        kind=contact.kind.value,
        jurisdiction=jurisdiction_of(contact.country) if _country(contact.country) else None,
        connector="email",
        address=email,
        languages=["en"],
        deadline_hours=24.0,
        covers=_covers((), tuple(networks)),
        legal_routes=[],
        requires=[],
        origin="rdap",
        enabled=True,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except DBIntegrityError:  # another worker found the same contact just now
        return session.scalars(select(Recipient).where(Recipient.key == key)).one()
    work.audit(
        "recipient.found", "recipient", row.id, {"key": key, "kind": row.kind, "via": "rdap"}
    )
    return row


def _rdap_key(kind: RecipientKind, email: str) -> str:
    key = f"{kind.value}:{email.lower()}"
    if KEY_PATTERN.match(key):
        return key
    return f"{kind.value}:{hashlib.sha256(email.lower().encode()).hexdigest()[:40]}"


def _locations(
    session: Session, target: Sighting | int | str, server_ip: str | None
) -> tuple[list[str], str | None]:
    if isinstance(target, str):
        return [target], server_ip
    sighting = session.get(Sighting, target) if isinstance(target, int) else target
    if sighting is None:
        raise NotFoundError(f"no sighting {target}")
    urls = [u for u in (sighting.location, sighting.final_url, sighting.page_url) if u]
    return urls, server_ip or sighting.server_ip


def _host_of(url: str) -> str | None:
    try:
        host = httpx.URL(url).host
    except (httpx.InvalidURL, ValueError, TypeError):
        return None
    return host.lower().rstrip(".") or None


def _covering(directory: list[Recipient], host: str) -> Recipient | None:
    """The entry whose domains cover ``host`` most closely (a label-wise suffix match)."""
    best: tuple[int, Recipient] | None = None
    for row in directory:
        if row.origin == "rdap":
            continue
        for domain in (row.covers or {}).get("domains") or []:
            if (host == domain or host.endswith("." + domain)) and (
                best is None or len(domain) > best[0]
            ):
                best = (len(domain), row)
    return best[1] if best else None


def _network_owner(directory: list[Recipient], server_ip: str) -> Recipient | None:
    """The directory entry (not one RDAP found) with the narrowest network holding the IP.

    RDAP-found networks are not matched here: a block's holder may have handed a smaller
    block to a customer with an abuse desk of its own, which only asking RDAP finds.
    """
    try:
        ip = ipaddress.ip_address(server_ip)
    except ValueError:
        return None
    best: tuple[int, Recipient] | None = None
    for row in directory:
        if row.origin == "rdap":
            continue
        for text in (row.covers or {}).get("networks") or []:
            net = ipaddress.ip_network(text, strict=False)
            if (
                ip.version == net.version
                and ip in net
                and (best is None or net.prefixlen > best[0])
            ):
                best = (net.prefixlen, row)
    return best[1] if best else None


def _ladder_next(
    session: Session, key: str | None, own_key: str, own_id: int | None = None
) -> int | None:
    if key is None or not key.strip():
        return None
    target = _find(session, key)
    if target.key == own_key or (own_id is not None and target.id == own_id):
        raise ValidationError("a recipient cannot escalate to itself")
    return target.id


def _find(session: Session, recipient: str | int) -> Recipient:
    text = str(recipient).strip()
    row = session.scalar(select(Recipient).where(Recipient.key == text.lower()))
    if row is None and text.isdigit():
        row = session.get(Recipient, int(text))
    if row is None:
        raise NotFoundError(f"no recipient {text[:70]!r}")
    return row


def _keys_by_id(session: Session) -> dict[int, str]:
    return {row_id: key for row_id, key in session.execute(select(Recipient.id, Recipient.key))}


def entry_of(
    session: Session, row: Recipient, keys: dict[int, str] | None = None
) -> RecipientEntry:
    """A recipient row as the services return it."""
    escalates_to = None
    if row.escalates_to_id is not None:
        escalates_to = (keys or {}).get(row.escalates_to_id) or session.scalar(
            select(Recipient.key).where(Recipient.id == row.escalates_to_id)
        )
    covers = row.covers or {}
    source = _sources().get(row.key) if row.origin == "default" else None
    return RecipientEntry(
        id=row.id,
        key=row.key,
        name=row.name,
        kind=row.kind,
        connector=row.connector,
        address=row.address,
        languages=tuple(row.languages or ()),
        deadline_hours=float(row.deadline_hours),
        jurisdiction=row.jurisdiction,
        legal_routes=tuple(row.legal_routes or ()),
        requires=tuple(row.requires or ()),
        domains=tuple(covers.get("domains") or ()),
        networks=tuple(covers.get("networks") or ()),
        origin=row.origin,
        enabled=bool(row.enabled),
        escalates_to=escalates_to,
        source=source,
    )


# The shipped defaults.


@cache
def shipped_entries() -> tuple[RecipientEntry, ...]:
    """The entries of ``directory.json``, checked like an administrator's (ValidationError
    names the entry that is wrong)."""
    data = json.loads(resources.files("safeeye.takedown").joinpath("directory.json").read_text())
    entries: list[RecipientEntry] = []
    for item in data["recipients"]:
        key = item.get("key", "?")
        try:
            connector = item["connector"]
            domains, networks = split_covers([*item.get("domains", []), *item.get("networks", [])])
            entries.append(
                RecipientEntry(
                    id=None,
                    key=key_of(key),
                    name=name_of(item["name"]),
                    kind=kind_of(item["kind"]),
                    connector=connector,
                    address=check_address(connector, item.get("address")),
                    languages=languages_of(item["languages"]),
                    deadline_hours=deadline_of(item["deadline_hours"]),
                    jurisdiction=jurisdiction_of(item.get("jurisdiction")),
                    legal_routes=tokens_of(item.get("legal_routes", []), "legal route"),
                    requires=tokens_of(item.get("requires", []), "requirement"),
                    domains=domains,
                    networks=networks,
                    origin="default",
                    escalates_to=item.get("escalates_to"),
                    source=str(item["source"]),
                )
            )
        except (KeyError, ValidationError) as exc:
            raise ValidationError(f"directory.json entry {key!r}: {exc}") from exc
    return tuple(entries)


def _sources() -> dict[str, str]:
    return {e.key: e.source or "" for e in shipped_entries()}


def _row_fields(entry: RecipientEntry) -> dict[str, Any]:
    return {
        "name": entry.name,
        "kind": entry.kind,
        "jurisdiction": entry.jurisdiction,
        "connector": entry.connector,
        "address": entry.address,
        "languages": list(entry.languages),
        "deadline_hours": entry.deadline_hours,
        "covers": _covers(entry.domains, entry.networks),
        "legal_routes": list(entry.legal_routes),
        "requires": list(entry.requires),
    }


def _covers(domains: tuple[str, ...], networks: tuple[str, ...]) -> dict[str, list[str]]:
    return {"domains": list(domains), "networks": list(networks)}


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].strip("-")
    if not slug:
        raise ValidationError("give a key (--key): the name has no letters a-z or digits")
    return slug


def _printable(text: str) -> str:
    return " ".join("".join(ch for ch in str(text) if ch.isprintable()).split())


def _valid_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _country(value: str | None) -> bool:
    return bool(value) and re.fullmatch(r"[A-Za-z]{2}", str(value)) is not None
