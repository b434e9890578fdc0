"""Abuse contacts by RDAP (RFC 9083): a hosting network's for an IP, a registrar's for a domain.

The registry library ``whoisit`` reads the IANA bootstrap (which RDAP server answers for which
TLD or address block), builds each query URL from it and parses the answers, abuse entities
nested in other entities included. safeeye does the HTTP itself, through the fetcher's address
guard: every connection goes to a checked public address (the allow-list setting
``fetch_allowlist`` admits a local test server), plain http only to such an allow-listed local
address, so neither the bootstrap data nor a hostile RDAP server can steer a query inside the
network. Query URLs come from the bootstrap only; links in answers are never followed.

Every answer and every failure is kept in ``rdap_cache``: answers for a week, failures (no such
object, a server away) for an hour. A cached lookup touches no network at all.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session
from whoisit.bootstrap import BaseBootstrap
from whoisit.errors import WhoisItError
from whoisit.parser import parse as parse_answer
from whoisit.query import QueryBuilder

from safeeye.config import Settings
from safeeye.db.models import RdapAnswer
from safeeye.db.types import utcnow
from safeeye.errors import FetchError, SafeEyeError
from safeeye.ingest.addresses import AddressGuard, is_public
from safeeye.ingest.pinning import Deadlines, PinnedBackend, PinnedTransport
from safeeye.takedown.model import RecipientKind

# whoisit logs every query URL (a domain that hosts a victim's media) at debug level.
logging.getLogger("whoisit").setLevel(logging.WARNING)

ANSWER_TTL = timedelta(days=7)
FAILURE_TTL = timedelta(hours=1)
#: Failures worth keeping: asking again within the hour would fail the same way.
CACHED_FAILURES = frozenset(
    {"rdap_not_found", "rdap_unreachable", "rdap_bad_answer", "rdap_refused", "rdap_no_server"}
)
MAX_ANSWER_BYTES = 8 * 1024**2  # the IANA dns.json is about 100 KB; answers a few KB
#: What the pinned transport raises untranslated (see ``ingest/pinning.py``).
_HTTPCORE_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
)
USER_AGENT = "safeeye-rdap/0.1 (abuse contact lookup)"
#: The bootstrap files whoisit needs, named as IANA publishes them.
BOOTSTRAP_FILES = {
    name: url.rsplit("/", 1)[1] for name, url in BaseBootstrap.BOOTSTRAP_URLS.items()
}


class RdapError(SafeEyeError):
    """An RDAP lookup that gave no contact; ``code`` says why (``rdap_not_found``,
    ``rdap_unreachable``, ``rdap_refused``, ``rdap_no_server``, ``rdap_bad_answer``,
    ``rdap_no_contact``, ``rdap_private``)."""

    code = "rdap"


@dataclass(frozen=True)
class AbuseContact:
    """Who takes abuse reports for a network or a registrar, as RDAP says."""

    kind: RecipientKind  # hosting | registrar
    email: str
    organisation: str  # the network's holder or the registrar
    handle: str  # the network's or the registrar's RDAP handle
    networks: tuple[str, ...] = ()  # the CIDR blocks of the network (hosting)
    country: str | None = None


class RdapClient:
    """Looks up abuse contacts through the cache in the caller's session; ``close()`` after."""

    def __init__(self, settings: Settings, *, timeout: float = 10.0, total: float = 30.0) -> None:
        self.bootstrap_url = settings.rdap_bootstrap_url.rstrip("/") + "/"
        self._guard = AddressGuard(settings.fetch_allowlist)
        self._deadlines = Deadlines()
        self._total = total
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._ca_bundle = settings.connector_ca_bundle
        self._builder: QueryBuilder | None = None
        self._parsing = BaseBootstrap()  # parsing needs no bootstrap data: cached answers parse

    def __enter__(self) -> RdapClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def network_contact(self, session: Session, ip: str) -> AbuseContact:
        """The abuse contact of the network holding ``ip``; ``RdapError`` when there is none."""
        try:
            address = ipaddress.ip_address(ip.strip())
        except ValueError as exc:
            raise RdapError("not an IP address", code="rdap_bad_query") from exc
        if not is_public(address):
            raise RdapError(
                "a private or reserved address has no public registration", code="rdap_private"
            )
        answer = self._answer(session, f"ip:{address}", lambda: self._query(session, "ip", address))
        parsed = self._parse("ip", str(address), answer)
        email = _abuse_email(parsed, None)
        if email is None:
            raise RdapError(
                "the network's registration names no abuse e-mail", code="rdap_no_contact"
            )
        holder = _first_name(parsed, ("registrant", "administrative")) or parsed.get("name") or ""
        networks = tuple(str(net) for net in parsed.get("cidrs") or ())
        return AbuseContact(
            RecipientKind.HOSTING,
            email,
            holder or parsed.get("handle", ""),
            parsed.get("handle", ""),
            networks,
            (parsed.get("country") or "").upper() or None,
        )

    def registrar_contact(self, session: Session, host: str) -> AbuseContact:
        """The abuse contact of the registrar of the domain ``host`` belongs to.

        Without a public-suffix list the registered domain is found by asking for the shortest
        name first (``example.com`` for ``cdn.example.com``; ``example.co.uk`` once ``co.uk``
        is not found), so a usual host costs one query.
        """
        labels = host.lower().rstrip(".").split(".")
        if len(labels) < 2:
            raise RdapError("a host name without a domain", code="rdap_bad_query")
        last: RdapError | None = None
        for size in range(2, len(labels) + 1):
            name = ".".join(labels[-size:])
            try:
                answer = self._answer(
                    session,
                    f"domain:{name}",
                    lambda name=name: self._query(session, "domain", name),
                )
            except RdapError as exc:
                if exc.code != "rdap_not_found":
                    raise
                last = exc
                continue
            return self._registrar(self._parse("domain", name, answer))
        assert last is not None
        raise last

    def _registrar(self, parsed: dict[str, Any]) -> AbuseContact:
        registrars = parsed.get("entities", {}).get("registrar") or []
        if not registrars:
            raise RdapError("the domain's registration names no registrar", code="rdap_no_contact")
        registrar = registrars[0]
        email = _abuse_email(parsed, registrars)
        if email is None:
            raise RdapError("the registrar names no abuse e-mail", code="rdap_no_contact")
        name = registrar.get("name") or registrar.get("handle") or "registrar"
        return AbuseContact(RecipientKind.REGISTRAR, email, name, registrar.get("handle", ""))

    def _parse(self, kind: str, query: str, answer: dict[str, Any]) -> dict[str, Any]:
        try:
            return parse_answer(self._parsing, kind, query, answer)  # type: ignore[arg-type]
        except (WhoisItError, ValueError, TypeError, AttributeError) as exc:
            raise RdapError(
                f"the RDAP answer could not be read ({type(exc).__name__})", code="rdap_bad_answer"
            ) from exc

    # The cache.

    def _answer(
        self, session: Session, key: str, fetch: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """The answer cached under ``key``, else ``fetch()``'s, cached (failures briefly)."""
        now = utcnow()
        row = session.get(RdapAnswer, key)
        if row is not None and row.expires_at > now:
            error = row.answer.get("error") if isinstance(row.answer, dict) else None
            if error:
                code, _, message = str(error).partition(": ")
                raise RdapError(f"{message} (cached)", code=code)
            return row.answer
        try:
            answer = fetch()
        except RdapError as exc:
            if exc.code in CACHED_FAILURES:
                _store(session, key, {"error": exc.as_text()}, now, now + FAILURE_TTL)
            raise
        _store(session, key, answer, now, now + ANSWER_TTL)
        return answer

    def _query(self, session: Session, kind: str, value: object) -> dict[str, Any]:
        builder = self._query_builder(session)
        try:
            _, url, exact = builder.build(query_type=kind, query_value=str(value))
        except WhoisItError as exc:
            raise RdapError(
                f"no RDAP service for this {kind} in the IANA registry", code="rdap_no_server"
            ) from exc
        if not exact:  # whoisit would fall back to a guessed RIR: ask only where IANA says
            raise RdapError(
                f"no RDAP service for this {kind} in the IANA registry", code="rdap_no_server"
            )
        answer = self._get_json(url)
        expected = "ip network" if kind == "ip" else "domain"
        if answer.get("objectClassName") != expected:
            raise RdapError(f"the RDAP answer is not a {expected}", code="rdap_bad_answer")
        return answer

    def _query_builder(self, session: Session) -> QueryBuilder:
        """whoisit's query builder on the IANA bootstrap files (cached like answers)."""
        if self._builder is None:
            data: dict[str, Any] = {"timestamp": int(time.time())}
            for name, filename in BOOTSTRAP_FILES.items():
                url = urljoin(self.bootstrap_url, filename)
                data[name] = self._usable(
                    self._answer(
                        session, f"bootstrap:{url}"[:255], lambda url=url: self._get_json(url)
                    )
                )
            bootstrap = BaseBootstrap()
            try:
                # http entries are dropped by ``_usable`` unless they name an allow-listed local
                # server, so whoisit may accept the rest.
                bootstrap.load_bootstrap_data(data, allow_insecure=True, from_json=False)
            except (WhoisItError, ValueError, TypeError, KeyError) as exc:
                raise RdapError(
                    f"the IANA bootstrap data could not be read ({type(exc).__name__})",
                    code="rdap_bad_answer",
                ) from exc
            self._builder = QueryBuilder(bootstrap)  # type: ignore[arg-type]
        return self._builder

    def _usable(self, registry: dict[str, Any]) -> dict[str, Any]:
        """A bootstrap file with only the server URLs safeeye may ask (https, or http to an
        allow-listed local address), and no service left without one."""
        services = []
        for service in registry.get("services") or []:
            if not (isinstance(service, list) and len(service) >= 2):
                continue
            urls = [u for u in service[-1] if isinstance(u, str) and self._may_ask(u)]
            if urls:
                services.append([*service[:-1], urls])
        return {**registry, "services": services}

    def _may_ask(self, url: str) -> bool:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError):
            return False
        if parsed.scheme == "https":
            return bool(parsed.host) and not parsed.userinfo
        if parsed.scheme != "http" or parsed.userinfo:
            return False
        try:
            ip = ipaddress.ip_address(parsed.host)
        except ValueError:
            return False
        return not is_public(ip) and self._guard.allowed(parsed.host, ip, parsed.port or 80)

    # HTTP.

    def _http(self) -> httpx.Client:
        if self._client is None:
            context = (
                ssl.create_default_context(cafile=str(self._ca_bundle))
                if self._ca_bundle
                else httpx.create_ssl_context()
            )
            transport = PinnedTransport(
                PinnedBackend(self._guard, self._deadlines), context, max_connections=8
            )
            self._client = httpx.Client(
                transport=transport,
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=True,
                max_redirects=3,
                trust_env=False,  # an environment proxy would bypass the address guard
                headers={"User-Agent": USER_AGENT, "Accept": "application/rdap+json"},
                event_hooks={"request": [self._check_request]},
            )
        return self._client

    def _check_request(self, request: httpx.Request) -> None:
        if not self._may_ask(str(request.url)):  # a redirect to plain http, say
            raise RdapError(
                "the RDAP server sent the query to a URL safeeye may not ask", code="rdap_refused"
            )

    def _get_json(self, url: str) -> dict[str, Any]:
        """GET ``url`` and read its JSON object; RdapError with a stable code otherwise."""
        if not self._may_ask(url):
            raise RdapError("an RDAP URL safeeye may not ask", code="rdap_refused")
        try:
            with (
                self._deadlines.until(time.monotonic() + self._total),
                self._http().stream("GET", url) as response,
            ):
                status = response.status_code
                body = _read_capped(response) if status == 200 else b""
        except RdapError:
            raise
        except FetchError as exc:
            code = "rdap_refused" if exc.code == "blocked_address" else "rdap_unreachable"
            raise RdapError(f"the RDAP server cannot be reached ({exc.code})", code=code) from exc
        except (httpx.HTTPError, *_HTTPCORE_ERRORS, OSError) as exc:
            raise RdapError(
                f"the RDAP server did not answer ({type(exc).__name__})", code="rdap_unreachable"
            ) from exc
        if status == 404:
            raise RdapError("the RDAP server has no such object (404)", code="rdap_not_found")
        if status != 200:
            raise RdapError(f"the RDAP server answered {status}", code="rdap_unreachable")
        try:
            answer = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RdapError("the RDAP answer is not JSON", code="rdap_bad_answer") from exc
        if not isinstance(answer, dict):
            raise RdapError("the RDAP answer is not a JSON object", code="rdap_bad_answer")
        return answer


def _read_capped(response: httpx.Response) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise RdapError("the RDAP answer is too large", code="rdap_bad_answer")
    return bytes(body)


def _store(
    session: Session, key: str, answer: dict[str, Any], now: datetime, expires: datetime
) -> None:
    """Keep ``answer`` under ``key`` (another worker storing it at once is harmless)."""
    row = session.get(RdapAnswer, key)
    if row is not None:
        row.answer, row.fetched_at, row.expires_at = answer, now, expires
        session.flush()
        return
    try:
        with session.begin_nested():
            session.add(RdapAnswer(query=key, answer=answer, fetched_at=now, expires_at=expires))
    except DBIntegrityError:
        pass  # another worker stored the same answer just now


def _abuse_email(parsed: dict[str, Any], parents: list[dict[str, Any]] | None) -> str | None:
    """The first abuse entity's e-mail: one found at the top first, then nested ones. With
    ``parents``, only abuse entities nested in one of those entities count (a domain's
    registrar: RFC 9083 puts the registrar's abuse contact inside the registrar entity)."""
    abuse = parsed.get("entities", {}).get("abuse") or []
    if parents is not None:
        names = {p.get(k) for p in parents for k in ("handle", "name")} - {None, ""}
        abuse = [a for a in abuse if {a.get("parent_handle"), a.get("parent_name")} & names]
    for entity in sorted(abuse, key=lambda a: bool(a.get("parent_handle") or a.get("parent_name"))):
        for email in entity.get("emails") or [entity.get("email")]:
            if email and str(email).strip():
                return str(email).strip()
    return None


def _first_name(parsed: dict[str, Any], roles: tuple[str, ...]) -> str | None:
    for role in roles:
        for entity in parsed.get("entities", {}).get(role) or []:
            if entity.get("name"):
                return str(entity["name"])
    return None
