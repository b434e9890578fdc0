"""The recipients directory: shipped defaults, administrators' entries, and the ladder for a
sighting, with abuse contacts found by RDAP from recorded answers served on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from conftest import FIXTURES, TESTER, act, make_app, make_settings
from hostile_server import LOOPBACK_ONLY, HostileServer, hang_up, send, status
from safeeye import cli
from safeeye.app import SafeEye
from safeeye.db.models import AuditEvent, RdapAnswer, Recipient, Sighting
from safeeye.db.types import utcnow
from safeeye.errors import ConflictError, NotFoundError, PermissionDenied, ValidationError
from safeeye.takedown.rdap import BOOTSTRAP_FILES, RdapClient, RdapError
from safeeye.takedown.recipients import (
    Ladder,
    add_recipient,
    find_recipients,
    list_recipients,
    load_defaults,
    shipped_entries,
    show_recipient,
    update_recipient,
)
from safeeye.work import Actor, Role

RDAP = FIXTURES / "rdap"
HOST_IP = "45.76.100.10"  # in the recorded network 45.76.96.0/19 of "Example Hosting LLC"
HOSTING = "hosting:abuse@example-hosting.net"
REGISTRAR = "registrar:abuse@registrar.example"


@dataclass
class Rdap:
    """The local server playing IANA's bootstrap service, ARIN, Verisign and Nominet."""

    server: HostileServer

    @property
    def bootstrap_url(self) -> str:
        return self.server.url("/bootstrap/")

    def asked(self) -> list[str]:
        return [r.path for r in self.server.requests()]


def _recorded(name: str, base: str) -> bytes:
    return (RDAP / name).read_text().replace("RDAP_BASE", base).encode()


@pytest.fixture
def rdap() -> Iterator[Rdap]:
    with HostileServer() as server:
        base = server.url("/rdap").rstrip("/")
        for filename in BOOTSTRAP_FILES.values():
            server.add(
                f"/bootstrap/{filename}", _recorded(filename, base), content_type="application/json"
            )
        answer = "application/rdap+json"
        server.add(
            f"/rdap/arin/ip/{HOST_IP}", _recorded("ip_network.json", base), content_type=answer
        )
        domain = _recorded("domain.json", base)
        server.add("/rdap/verisign/domain/leaky-host.net", domain, content_type=answer)
        server.add("/rdap/nominet/domain/leaky.co.uk", domain, content_type=answer)
        yield Rdap(server)


def _app(tmp_path: Path, rdap: Rdap | None = None, **settings: Any) -> SafeEye:
    if rdap is not None:
        settings.setdefault("rdap_bootstrap_url", rdap.bootstrap_url)
    settings.setdefault("fetch_allowlist", LOOPBACK_ONLY)
    return make_app(make_settings(tmp_path / "data", **settings))


@pytest.fixture
def app(tmp_path: Path, rdap: Rdap) -> Iterator[SafeEye]:
    """The service (no models: nothing here scans) with RDAP pointed at the local server."""
    safe = _app(tmp_path, rdap)
    act(safe, load_defaults)
    yield safe
    safe.close()


def _keys(ladder: Ladder) -> list[str]:
    return [step.key for step in ladder]


def _count(app: SafeEye, model: Any, *where: Any) -> int:
    with app.db.session(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


# The shipped defaults.


def test_shipped_directory_has_the_regulator_platforms_and_hash_sharing_with_sources() -> None:
    entries = {e.key: e for e in shipped_entries()}
    kcsc = entries["kcsc"]
    assert (kcsc.kind, kcsc.jurisdiction, kcsc.connector, kcsc.address) == (
        "regulator",
        "KR",
        "api",
        None,
    )
    assert kcsc.languages == ("ko",) and kcsc.deadline_hours == 24
    assert {"kr_tba_22_5", "kr_spa_14_2"} <= set(kcsc.legal_routes)
    kinds = {e.kind for e in entries.values()}
    assert {"regulator", "search", "platform", "messaging", "image_host", "hash_sharing"} <= kinds
    assert entries["stopncii"].connector == "stopncii"
    assert entries["telegram"].address == "abuse@telegram.org"
    assert "youtube.com" in entries["youtube"].domains
    assert all(e.source for e in entries.values())
    for entry in entries.values():  # TAKE IT DOWN's 48 hours where it binds, 24 otherwise
        expected = 48 if entry.jurisdiction == "US" and entry.kind == "platform" else None
        if expected:
            assert entry.deadline_hours == expected, entry.key
        if entry.kind not in ("regulator", "hash_sharing"):
            assert entry.escalates_to == "kcsc", entry.key


def test_defaults_loaded_twice_change_nothing_and_keep_an_admins_edit(
    tmp_path: Path, rdap: Rdap
) -> None:
    app = _app(tmp_path, rdap)
    shipped = {e.key for e in shipped_entries()}
    with app.db.session(read_only=True) as session:  # init loaded them
        assert set(session.scalars(select(Recipient.key))) >= shipped
    audits = _count(app, AuditEvent)

    again = act(app, load_defaults)
    assert again.inserted == again.refreshed == again.kept == ()
    assert set(again.unchanged) == shipped
    assert _count(app, AuditEvent) == audits  # nothing happened, nothing recorded

    act(app, update_recipient, "kcsc", address="https://hotline.kcsc.example/v1/batches")
    with app.db.session() as session:  # a shipped entry drifted from the file (an old version)
        session.execute(update(Recipient).where(Recipient.key == "meta").values(deadline_hours=5))
        session.commit()
    third = act(app, load_defaults)
    assert third.kept == ("kcsc",)
    assert third.refreshed == ("meta",)
    kcsc = act(app, show_recipient, "kcsc")
    assert kcsc.address == "https://hotline.kcsc.example/v1/batches"
    assert kcsc.origin == "admin"
    assert act(app, show_recipient, "meta").deadline_hours == 48
    assert act(app, show_recipient, "meta").escalates_to == "kcsc"
    assert rdap.asked() == []  # the directory alone asks nobody


# The ladder.


def test_a_platform_url_goes_to_the_platform_then_the_regulator(app: SafeEye, rdap: Rdap) -> None:
    ladder = act(
        app, find_recipients, "https://video.twimg.com/ext_tw_video/1/pu/vid/a.mp4", HOST_IP
    )
    assert _keys(ladder) == ["x", "kcsc"]
    assert ladder[0].connector == "export" and ladder[0].deadline_hours == 48
    assert ladder[0].escalates_to == "kcsc"
    assert rdap.asked() == []  # a platform needs no RDAP


def test_the_closest_domain_wins_and_subdomains_are_covered_by_labels(app: SafeEye) -> None:
    act(
        app,
        add_recipient,
        "Example Video CDN",
        kind="platform",
        connector="email",
        address="abuse@cdn.example.com",
        covers=("videos.example.com",),
    )
    act(
        app,
        add_recipient,
        "Example",
        kind="platform",
        connector="email",
        address="abuse@example.com",
        covers=("example.com",),
    )
    assert (
        _keys(act(app, find_recipients, "https://a.videos.example.com/x.mp4"))[0]
        == "example-video-cdn"
    )
    assert _keys(act(app, find_recipients, "https://www.example.com/x.jpg"))[0] == "example"
    # "notexample.com" ends with "example.com" but is not under it
    act(
        app,
        add_recipient,
        "Hoster",
        kind="hosting",
        connector="email",
        address="abuse@hoster.example",
        covers=("45.76.0.0/16",),
    )
    assert _keys(act(app, find_recipients, "https://notexample.com/x.jpg", HOST_IP))[0] == "hoster"


def test_an_unknown_host_goes_to_its_network_then_its_registrar_then_the_regulator(
    app: SafeEye, rdap: Rdap
) -> None:
    ladder = act(app, find_recipients, "https://cdn.leaky-host.net/p/123.jpg", HOST_IP)
    assert _keys(ladder) == [HOSTING, REGISTRAR, "kcsc"], ladder.gaps
    hosting, registrar, regulator = ladder
    assert (hosting.kind, hosting.connector, hosting.address) == (
        "hosting",
        "email",
        "abuse@example-hosting.net",
    )
    assert hosting.name == "Example Hosting LLC (network abuse)"
    assert hosting.networks == ("45.76.96.0/19",) and hosting.jurisdiction == "US"
    assert hosting.origin == registrar.origin == "rdap"
    assert (registrar.kind, registrar.address) == ("registrar", "abuse@registrar.example")
    assert registrar.name == "Example Registrar, Inc. (registrar abuse)"
    assert hosting.escalates_to == REGISTRAR and registrar.escalates_to == "kcsc"
    assert regulator.kind == "regulator"
    assert ladder.gaps == ()
    # the registry was asked for the registered domain, not the host; the NOC is no abuse desk
    assert "/rdap/verisign/domain/leaky-host.net" in rdap.asked()

    again = act(app, find_recipients, "https://leaky-host.net/other.jpg", HOST_IP)
    assert [s.id for s in again] == [s.id for s in ladder]  # created once, reused
    assert _count(app, Recipient, Recipient.origin == "rdap") == 2


def test_a_cached_answer_is_not_asked_again(app: SafeEye, rdap: Rdap) -> None:
    act(app, find_recipients, "https://cdn.leaky-host.net/p/1.jpg", HOST_IP)
    asked = rdap.asked()
    assert sorted(asked) == sorted(
        [f"/bootstrap/{f}" for f in BOOTSTRAP_FILES.values()]
        + [f"/rdap/arin/ip/{HOST_IP}", "/rdap/verisign/domain/leaky-host.net"]
    )
    with RdapClient(app.settings) as client, app.work(TESTER) as work:  # a new process, say
        assert client.network_contact(work.session, HOST_IP).email == "abuse@example-hosting.net"
        assert client.registrar_contact(work.session, "www.leaky-host.net").handle == "1068"
    act(app, find_recipients, "https://img.leaky-host.net/p/2.jpg", HOST_IP)
    assert rdap.asked() == asked  # nothing new reached the server
    with app.db.session(read_only=True) as session:
        row = session.get(RdapAnswer, f"ip:{HOST_IP}")
        assert row is not None
        assert timedelta(days=6) < row.expires_at - row.fetched_at <= timedelta(days=7)


def test_a_name_under_a_two_label_suffix_is_found_after_a_not_found_that_is_cached(
    app: SafeEye, rdap: Rdap
) -> None:
    ladder = act(app, find_recipients, "https://img.leaky.co.uk/a.jpg", HOST_IP)
    assert _keys(ladder) == [HOSTING, REGISTRAR, "kcsc"]
    domains = [p for p in rdap.asked() if "/domain/" in p]
    assert domains == ["/rdap/nominet/domain/co.uk", "/rdap/nominet/domain/leaky.co.uk"]
    with app.db.session(read_only=True) as session:
        miss = session.get(RdapAnswer, "domain:co.uk")
        assert miss is not None and miss.answer["error"].startswith("rdap_not_found")
        assert miss.expires_at - miss.fetched_at <= timedelta(hours=1)


def test_a_failure_is_a_typed_error_cached_briefly_then_asked_again(
    app: SafeEye, rdap: Rdap
) -> None:
    ladder = act(app, find_recipients, "https://unknown-site.net/a.jpg", HOST_IP)
    assert _keys(ladder) == [HOSTING, "kcsc"]
    assert ladder.gaps == ("registrar: rdap_not_found: the RDAP server has no such object (404)",)
    with (
        RdapClient(app.settings) as client,
        app.work(TESTER) as work,
        pytest.raises(RdapError) as caught,
    ):
        client.registrar_contact(work.session, "unknown-site.net")
    assert caught.value.code == "rdap_not_found" and "(cached)" in str(caught.value)
    assert rdap.server.hits("/rdap/verisign/domain/unknown-site.net") == 1

    with app.db.session() as session:  # an hour later
        session.execute(update(RdapAnswer).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    act(app, find_recipients, "https://unknown-site.net/a.jpg", HOST_IP)
    assert rdap.server.hits("/rdap/verisign/domain/unknown-site.net") == 2


def test_a_server_that_fails_or_hangs_up_is_unreachable(app: SafeEye, rdap: Rdap) -> None:
    rdap.server.route("/rdap/verisign/domain/busy-site.net", status(503))
    rdap.server.route("/rdap/verisign/domain/rude-site.net", hang_up())
    rdap.server.route(
        "/rdap/verisign/domain/odd-site.net",
        lambda h: send(h, 200, b"<html>not json</html>", content_type="text/html"),
    )
    with RdapClient(app.settings, timeout=2.0) as client, app.work(TESTER) as work:
        for host, code in [
            ("busy-site.net", "rdap_unreachable"),
            ("rude-site.net", "rdap_unreachable"),
            ("odd-site.net", "rdap_bad_answer"),
        ]:
            with pytest.raises(RdapError) as caught:
                client.registrar_contact(work.session, host)
            assert caught.value.code == code, host


def test_rdap_never_reaches_a_private_address_the_allowlist_does_not_admit(
    tmp_path: Path, rdap: Rdap
) -> None:
    plain = _app(tmp_path / "plain", rdap, fetch_allowlist=())
    act(plain, load_defaults)
    ladder = act(plain, find_recipients, "https://cdn.leaky-host.net/a.jpg", HOST_IP)
    assert _keys(ladder) == ["kcsc"]
    assert [g.split(":")[0:2] for g in ladder.gaps] == [
        ["hosting", " rdap_refused"],
        ["registrar", " rdap_refused"],
    ]
    # https through a name that resolves to 127.0.0.1 is refused when connecting
    named = _app(
        tmp_path / "named",
        fetch_allowlist=(),
        rdap_bootstrap_url=f"https://localhost:{rdap.server.port}/bootstrap/",
    )
    with (
        RdapClient(named.settings) as client,
        named.work(TESTER) as work,
        pytest.raises(RdapError) as caught,
    ):
        client.network_contact(work.session, HOST_IP)
    assert caught.value.code == "rdap_refused"
    assert rdap.asked() == []


@pytest.mark.postgres
def test_the_ladder_and_its_cache_on_postgresql(
    tmp_path: Path, rdap: Rdap, postgres_schema: str
) -> None:
    app = _app(tmp_path, rdap, database_url=postgres_schema)
    try:
        act(app, load_defaults)
        first = act(app, find_recipients, "https://cdn.leaky-host.net/p/1.jpg", HOST_IP)
        asked = rdap.asked()
        second = act(app, find_recipients, "https://leaky-host.net/p/2.jpg", HOST_IP)
        assert _keys(first) == _keys(second) == [HOSTING, REGISTRAR, "kcsc"]
        assert [s.id for s in first] == [s.id for s in second]
        assert rdap.asked() == asked
        assert act(app, load_defaults).inserted == ()
    finally:
        app.close()


def test_a_private_server_address_is_not_looked_up(app: SafeEye, rdap: Rdap) -> None:
    ladder = act(app, find_recipients, "https://cdn.leaky-host.net/a.jpg", "10.1.2.3")
    assert _keys(ladder) == [REGISTRAR, "kcsc"]
    assert ladder.gaps[0].startswith("hosting: rdap_private")
    assert f"/rdap/arin/ip/{HOST_IP}" not in rdap.asked()
    # a URL naming its server by address needs no separate one, and has no registrar
    ladder = act(app, find_recipients, f"http://{HOST_IP}:8080/a.jpg")
    assert _keys(ladder) == [HOSTING, "kcsc"]
    assert ladder.gaps == ("registrar: no domain name",)


def test_a_sighting_uses_its_urls_and_server_address(app: SafeEye) -> None:
    with app.db.session() as session:
        url = "https://media.leaky-host.net/v/9.mp4"
        sighting = Sighting(
            sha256="ab" * 32,
            location=url,
            location_key=hashlib.sha256(url.encode()).hexdigest(),
            page_url="https://www.reddit.com/r/x/comments/1",
            server_ip=HOST_IP,
        )
        session.add(sighting)
        session.commit()
        sighting_id = sighting.id
    # the file's host has no entry: the platform of the page it is shown on comes first
    assert _keys(act(app, find_recipients, sighting_id)) == ["reddit", "kcsc"]
    with app.db.session() as session:
        session.execute(update(Sighting).where(Sighting.id == sighting_id).values(page_url=None))
        session.commit()
    assert _keys(act(app, find_recipients, sighting_id)) == [HOSTING, REGISTRAR, "kcsc"]
    with pytest.raises(NotFoundError):
        act(app, find_recipients, 999_999)


def test_a_disabled_recipient_is_left_out_of_the_ladder(app: SafeEye) -> None:
    act(app, update_recipient, "x", enabled=False)
    ladder = act(app, find_recipients, "https://x.com/a/status/1/photo/1", HOST_IP)
    assert "x" not in _keys(ladder)
    assert _keys(ladder)[-1] == "kcsc"


# Administrators' entries.


def test_add_validates_every_field(app: SafeEye) -> None:
    base: dict[str, Any] = {
        "kind": "platform",
        "connector": "email",
        "address": "abuse@site.example",
    }
    bad: list[dict[str, Any]] = [
        {"connector": "fax"},
        {"address": "not-an-address"},
        {"address": None},  # an email recipient needs one
        {"connector": "api", "address": "http://hotline.example/v1"},  # https only
        {"connector": "api", "address": "ftp://hotline.example/v1"},
        {"connector": "export", "address": "https://user:pw@form.example/"},
        {"languages": ("kor",)},
        {"languages": ()},
        {"deadline_hours": 0},
        {"deadline_hours": -5},
        {"covers": ("*.site.example",)},
        {"covers": ("localhost",)},
        {"covers": ("10.0.0.0/33",)},
        {"covers": ("site..example",)},
        {"kind": "friend"},
        {"jurisdiction": "Korea"},
        {"legal_routes": ("Art. 14!",)},
        {"escalates_to": "nobody-known"},
    ]
    for change in bad:
        with pytest.raises((ValidationError, NotFoundError)):
            act(app, add_recipient, "Site", **{**base, **change})
    assert _count(app, Recipient, Recipient.origin == "admin") == 0

    local = act(
        app,
        add_recipient,
        "Test hotline",
        kind="regulator",
        connector="api",
        address="http://127.0.0.1:8443/v1",
    )
    assert local.address == "http://127.0.0.1:8443/v1"
    made = act(
        app,
        add_recipient,
        "Site",
        **{
            **base,
            "covers": ("Site.Example", "203.0.113.7/24", "198.51.100.1"),
            "languages": ("KO", "en", "ko"),
        },
    )
    assert made.domains == ("site.example",)
    assert made.networks == ("203.0.113.0/24", "198.51.100.1/32")
    assert made.languages == ("ko", "en")
    with pytest.raises(ConflictError):
        act(app, add_recipient, "Site", **base)


def test_only_administrators_manage_and_the_other_roles_read(app: SafeEye) -> None:
    auditor = Actor("user:audit", frozenset({Role.AUDITOR}))
    assert app.call(auditor, list_recipients)
    assert app.call(auditor, show_recipient, "kcsc").key == "kcsc"
    with pytest.raises(PermissionDenied):
        app.call(auditor, add_recipient, "X2", kind="platform", connector="export")
    with pytest.raises(PermissionDenied):
        app.call(auditor, update_recipient, "kcsc", enabled=False)
    admin = Actor("user:boss", frozenset({Role.ADMIN}))
    assert app.call(admin, update_recipient, "kcsc", deadline_hours=12).deadline_hours == 12


def test_update_changes_only_what_is_given_and_records_it(app: SafeEye) -> None:
    before = act(app, show_recipient, "telegram")
    after = act(
        app,
        update_recipient,
        "telegram",
        connector="export",
        address="https://telegram.org/support",
    )
    assert (after.connector, after.address) == ("export", "https://telegram.org/support")
    assert after.domains == before.domains and after.languages == before.languages
    with pytest.raises(ValidationError):  # back to e-mail with a URL as the address
        act(app, update_recipient, "telegram", connector="email")
    with pytest.raises(ValidationError):
        act(app, update_recipient, "telegram", escalates_to="telegram")
    cleared = act(app, update_recipient, "telegram", escalates_to="", jurisdiction="ae")
    assert cleared.escalates_to is None and cleared.jurisdiction == "AE"
    with app.db.session(read_only=True) as session:
        details = [
            e.details
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == "recipient.update")
            )
        ]
    assert {"key": "telegram", "changed": ["address", "connector"]} in details


# The command line.


def _cli(app: SafeEye, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, Any]:
    monkeypatch.setitem(cli._state, "app", app)
    result = CliRunner().invoke(cli.app, ["recipients", *args, "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, json.loads(result.stdout)


def test_cli_adds_lists_shows_and_updates_with_json(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, added = _cli(
        app,
        monkeypatch,
        "add",
        "Example Tube",
        "--covers",
        "exampletube.com,cdn.exampletube.net",
        "--covers",
        "192.0.2.0/24",
        "--connector",
        "email",
        "--address",
        "legal@exampletube.com",
        "--language",
        "en",
        "--language",
        "ja",
        "--deadline-hours",
        "48",
        "--jurisdiction",
        "JP",
        "--escalates-to",
        "kcsc",
    )
    assert code == 0, added
    assert added["key"] == "example-tube" and added["origin"] == "admin"
    assert added["domains"] == ["exampletube.com", "cdn.exampletube.net"]
    assert added["networks"] == ["192.0.2.0/24"]
    assert added["languages"] == ["en", "ja"] and added["deadline_hours"] == 48
    assert added["escalates_to"] == "kcsc"

    code, listed = _cli(app, monkeypatch, "list")
    assert code == 0
    assert "example-tube" in [e["key"] for e in listed] and "kcsc" in [e["key"] for e in listed]
    code, searches = _cli(app, monkeypatch, "list", "--kind", "search")
    assert {e["kind"] for e in searches} == {"search"}

    code, shown = _cli(app, monkeypatch, "show", "example-tube")
    assert code == 0 and shown == added
    code, shown = _cli(app, monkeypatch, "show", "kcsc")
    assert shown["source"] and shown["address"] is None

    code, updated = _cli(
        app, monkeypatch, "update", "kcsc", "--address", "https://hotline.kcsc.example/v1"
    )
    assert code == 0 and updated["address"] == "https://hotline.kcsc.example/v1"
    assert updated["origin"] == "admin"
    code, disabled = _cli(app, monkeypatch, "update", "example-tube", "--disable")
    assert disabled["enabled"] is False
    code, enabled_only = _cli(app, monkeypatch, "list", "--enabled")
    assert "example-tube" not in [e["key"] for e in enabled_only]

    code, found = _cli(app, monkeypatch, "find", "https://www.exampletube.com/v/1")
    assert code == 0 and [s["key"] for s in found["steps"]] == ["kcsc"]  # disabled: skipped


def test_cli_validation_errors_exit_2_with_the_reason(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    for args, fragment in [
        (["add", "Bad", "--connector", "email", "--address", "nobody"], "not an e-mail address"),
        (["add", "Bad", "--connector", "api", "--address", "http://api.example/x"], "https://"),
        (["add", "Bad", "--connector", "export", "--language", "xx"], "ISO 639-1"),
        (["add", "Bad", "--connector", "export", "--deadline-hours", "0"], "deadline"),
        (["add", "Bad", "--connector", "export", "--covers", "not a host"], "host name"),
        (["add", "Bad", "--connector", "export", "--covers", "1.2.3.0/40"], "CIDR"),
        (["update", "kcsc", "--address", "mailto:x@y.example"], "https://"),
        (["show", "no-such-recipient"], "no recipient"),
    ]:
        code, output = _cli(app, monkeypatch, *args)
        assert code == 2, args
        assert fragment in output["error"], (args, output)
