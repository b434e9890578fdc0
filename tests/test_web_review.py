"""The review pages and their API: the queue paged on the server with blurred thumbnails, a
match's faces and frames blurred until asked (each sharp look audited and counted), decisions
one by one or in bulk through plain forms, reviewers (and admins) only."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from PIL import Image, ImageFilter, ImageStat
from sqlalchemy import func, select

from conftest import FACES, VIDEO, act, make_app, make_settings
from safeeye.accounts import create_user
from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, add_known, create_case
from safeeye.db.models import AuditEvent, Case, Match
from safeeye.pipeline.detectors import Detectors
from safeeye.pipeline.rematch import rematch_archive
from safeeye.pipeline.scan import Scanner
from safeeye.review.queue import review_queue
from safeeye.web.app import create_app
from webtools import INLINE_CODE, PASSWORD, api_token, browser, form_token, user

PHOTOS = ("obama2.jpg", "obama3.jpg", "two_people.jpg")


@dataclass
class World:
    safe: SafeEye
    web: FastAPI
    video_match: int
    hash_match: int

    def case(self, code: str, *, minor: bool = False) -> list[int]:
        """A new case with Obama's face as its reference, matched against the scanned archive
        (no new scan): its match ids."""
        act(self.safe, create_case, code)
        act(self.safe, add_faces, code, [FACES / "obama.jpg"])
        act(self.safe, rematch_archive, code)
        with self.safe.db.session() as session:
            case = session.execute(select(Case).where(Case.code == code)).scalar_one()
            if minor:
                case.minor = True
            ids = session.execute(
                select(Match.id).where(Match.case_id == case.id).order_by(Match.id)
            ).scalars()
            return list(ids)

    def in_queue_order(self, code: str) -> list[int]:
        """The pending matches of case ``code`` in the order the queue shows them."""
        page = act(self.safe, review_queue, case=code)
        return [item.match_id for item in page.items]

    def status(self, match_id: int) -> str:
        with self.safe.db.session(read_only=True) as session:
            return str(session.get(Match, match_id).status)  # type: ignore[union-attr]

    def events(self, action: str, actor: str | None = None) -> int:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        if actor is not None:
            query = query.where(AuditEvent.actor == actor)
        with self.safe.db.session(read_only=True) as session:
            return int(session.scalar(query) or 0)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, detectors: Detectors) -> Iterator[World]:
    """Scanned once for the module: three photos and the fixture video. Case RV-VIDEO looks
    for the face in the video; RV-HASH registered one photo as known media."""
    safe = make_app(make_settings(tmp_path_factory.mktemp("review") / "data"), detectors)
    act(safe, create_case, "RV-VIDEO")
    act(safe, add_faces, "RV-VIDEO", [FACES / "lin-manuel-miranda.png"])
    act(safe, create_case, "RV-HASH")
    act(safe, add_known, "RV-HASH", [FACES / "two_people.jpg"])
    Scanner(safe).scan_paths([*(FACES / name for name in PHOTOS), VIDEO])
    with safe.db.session(read_only=True) as session:
        video = session.execute(
            select(Match.id).join(Case).where(Case.code == "RV-VIDEO")
        ).scalar_one()
        hashed = session.execute(
            select(Match.id)
            .join(Case)
            .where(Case.code == "RV-HASH", Match.kind == "hash")
            .order_by(Match.distance)
            .limit(1)
        ).scalar_one()
    user(safe, "rev", "reviewer")
    user(safe, "rev2", "reviewer")
    user(safe, "aud", "auditor")
    user(safe, "coun", "counselor")
    user(safe, "adm", "admin")
    act(safe, create_user, "soft", ["reviewer"], password=PASSWORD, language="en",
        blur_level="light")  # fmt: skip
    yield World(safe, create_app(safe), video, hashed)
    safe.close()


def sharpness(jpeg: bytes) -> float:
    """High-frequency energy: the variance of the edges."""
    with Image.open(io.BytesIO(jpeg)) as image:
        edges = image.convert("L").filter(ImageFilter.FIND_EDGES)
        return float(ImageStat.Stat(edges).var[0])


def is_greyscale(jpeg: bytes) -> bool:
    with Image.open(io.BytesIO(jpeg)) as image:
        return image.mode == "L"


def assert_clean_page(html: str) -> None:
    """No inline script, style or event handler (the CSP forbids them)."""
    assert not INLINE_CODE.search(html)
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))


# -- the queue page --------------------------------------------------------------------------


def test_the_queue_shows_each_match_with_a_blurred_thumbnail_and_a_plain_look_is_not_audited(
    world: World,
) -> None:
    ids = world.case("RV-Q")
    with browser(world.web, "rev") as client:
        page = client.get("/review?case=RV-Q")
        assert page.status_code == 200
        assert_clean_page(page.text)
        for match_id in ids:
            assert f'src="/review/{match_id}/preview.jpg"' in page.text
            assert f'name="match_id" value="{match_id}"' in page.text
            assert f'href="/review/{match_id}?case=RV-Q"' in page.text  # in the same queue
        assert "RV-Q" in page.text and "/ 0.60" in page.text  # distance against threshold
        assert "review.js" in page.text and "<kbd>j</kbd>" in page.text  # keys, on screen
        before = world.events("media.revealed")
        blurred = client.get(f"/review/{ids[0]}/preview.jpg")
        assert blurred.status_code == 200 and blurred.headers["content-type"] == "image/jpeg"
        assert blurred.headers["cache-control"] == "no-store"
        assert is_greyscale(blurred.content)
        assert world.events("media.revealed") == before
        sharp = client.get(f"/review/{ids[0]}/preview.jpg?reveal=1")
        assert sharp.status_code == 200 and not is_greyscale(sharp.content)
        assert world.events("media.revealed", "user:rev") == before + 1
        assert sharpness(blurred.content) * 20 < sharpness(sharp.content)


def test_a_minors_case_comes_first_and_the_queue_pages_on_the_server(world: World) -> None:
    world.case("RV-ADULT")
    minor = world.case("RV-MINOR", minor=True)
    with browser(world.web, "rev") as client:
        queue = client.get("/api/v1/review/queue?limit=2").json()
        assert queue["items"][0]["case"] == "RV-MINOR" and queue["items"][0]["minor"]
        assert queue["items"][0]["match_id"] in minor
        assert queue["total"] > 2 and len(queue["items"]) == 2
        second = client.get("/api/v1/review/queue?limit=2&offset=2").json()
        assert not {i["match_id"] for i in second["items"]} & {
            i["match_id"] for i in queue["items"]
        }
        page = client.get("/review")
        rows = re.findall(r'data-match="(\d+)"', page.text)
        assert int(rows[0]) in minor and "Minor" in page.text
        assert client.get("/review?offset=-1").status_code == 422
        assert client.get("/review?status=confirmed").status_code == 422
        assert client.get("/review?case=NO-SUCH").status_code == 404
        assert client.get("/review?case=%00").status_code == 422
        assert client.get("/review?case=&status=pending").status_code == 200  # the empty filter


# -- one match: faces, frames, why, decisions ------------------------------------------------


def test_a_match_page_shows_the_faces_why_and_where_blurred_until_asked(world: World) -> None:
    ids = world.case("RV-D")
    with browser(world.web, "rev") as client:
        page = client.get(f"/review/{ids[0]}?case=RV-D")
        assert page.status_code == 200
        assert_clean_page(page.text)
        html = page.text
        assert f"/review/{ids[0]}/faces/reference.jpg" in html
        assert f"/review/{ids[0]}/faces/found.jpg" in html
        assert "Face distance" in html and "0.60" in html  # why, against the threshold
        assert "obama" in html  # where it was seen (the scanned path)
        assert 'value="confirm"' in html and 'value="skip"' in html
        shown_after_link = re.sub(r'data-reveal="[^"]*"', "", html.split("Show unblurred")[1])
        assert "?reveal=1" not in shown_after_link  # every picture blurred
        before = world.events("media.revealed")
        for side in ("reference", "found"):
            face = client.get(f"/review/{ids[0]}/faces/{side}.jpg")
            assert face.status_code == 200 and face.headers["content-type"] == "image/jpeg"
        assert world.events("media.revealed") == before
        shown = client.get(f"/review/{ids[0]}?case=RV-D&reveal=1")
        assert f'src="/review/{ids[0]}/preview.jpg?reveal=1"' in shown.text
        assert client.get(f"/review/{ids[0]}/faces/found.jpg?reveal=1").status_code == 200
        assert world.events("media.revealed") == before + 1
        assert client.get(f"/review/{ids[0]}/faces/left.jpg").status_code == 422
        assert client.get("/review/99999999/preview.jpg").status_code == 404
        assert client.get(f"/review/{2**40}").status_code == 422


def test_confirming_through_the_form_records_it_and_shows_the_next_match(world: World) -> None:
    world.case("RV-C")
    first, second, *_ = world.in_queue_order("RV-C")
    with browser(world.web, "rev") as client:
        page = client.get(f"/review/{first}?case=RV-C").text
        fields = {
            "csrf_token": form_token(page),
            "decision": "confirm",
            "category": "synthetic",
            "note": "her face on another body",
            "case": "RV-C",
        }
        before = world.events("match.confirmed", "user:rev")
        answer = client.post(f"/review/{first}/decision", data=fields)
        assert answer.status_code == 303
        assert world.status(first) == "confirmed"
        assert world.events("match.confirmed", "user:rev") == before + 1
        following = client.get(answer.headers["location"])
        assert following.status_code == 200 and f"Match {second}" in following.text
        assert answer.headers["location"].startswith(f"/review/{second}?case=RV-C")


def test_a_rejection_needs_a_reason_and_the_form_says_so(world: World) -> None:
    match_id, *_ = world.case("RV-R")
    with browser(world.web, "rev") as client:
        token = form_token(client.get(f"/review/{match_id}").text)
        refused = client.post(
            f"/review/{match_id}/decision",
            data={"csrf_token": token, "decision": "reject", "reason": ""},
        )
        assert refused.status_code == 422
        assert "Choose why the match is rejected." in refused.text
        assert 'id="reason"' in refused.text and world.status(match_id) == "pending"
        assert_clean_page(refused.text)
        done = client.post(
            f"/review/{match_id}/decision",
            data={"csrf_token": token, "decision": "reject", "reason": "not_victim"},
        )
        assert done.status_code == 303 and world.status(match_id) == "rejected"


def test_two_checked_rows_are_confirmed_together_and_one_is_escalated(world: World) -> None:
    a, b, c, *_ = world.case("RV-B")
    with browser(world.web, "rev") as client:
        token = form_token(client.get("/review?case=RV-B").text)
        bulk = client.post(
            "/review/decisions",
            data={
                "csrf_token": token,
                "match_id": [str(a), str(b)],
                "decision": "confirm",
                "category": "illegally_filmed",
                "case": "RV-B",
            },
        )
        assert bulk.status_code == 303 and bulk.headers["location"] == "/review?case=RV-B"
        assert world.status(a) == world.status(b) == "confirmed"
        for wrong in (
            {"match_id": str(2**40), "decision": "confirm"},
            {"match_id": str(a), "decision": "delete"},
            {"match_id": str(a), "decision": "reject", "reason": "bored"},
            {"match_id": str(a), "decision": "escalate", "note": "x" * 2001},
        ):
            answer = client.post("/review/decisions", data={"csrf_token": token, **wrong})
            assert answer.status_code == 422, wrong
        none = client.post("/review/decisions", data={"csrf_token": token, "decision": "confirm"})
        assert none.status_code == 422 and "Nothing was decided." in none.text
        up = client.post(
            "/review/decisions",
            data={"csrf_token": token, "match_id": str(c), "decision": "escalate"},
        )
        assert up.status_code == 303 and world.status(c) == "escalated"
        escalated = client.get("/review?status=escalated&case=RV-B").text
        assert f'data-match="{c}"' in escalated


def test_skip_goes_on_to_the_next_match_without_deciding(world: World) -> None:
    world.case("RV-S")
    first, second, *_ = world.in_queue_order("RV-S")
    with browser(world.web, "rev") as client:
        token = form_token(client.get(f"/review/{first}?case=RV-S").text)
        fields = {"csrf_token": token, "decision": "skip", "case": "RV-S"}
        skip = client.post(f"/review/{first}/decision", data=fields)
        assert skip.status_code == 303 and skip.headers["location"].startswith(f"/review/{second}")
        assert world.status(first) == "pending"


# -- video --------------------------------------------------------------------------------


def test_a_video_match_shows_its_matched_frames_as_a_blurred_strip_and_never_plays(
    world: World,
) -> None:
    match_id = world.video_match
    with browser(world.web, "rev") as client:
        page = client.get(f"/review/{match_id}")
        assert page.status_code == 200
        assert "<video" not in page.text and "Frames" in page.text
        strip = client.get(f"/api/v1/matches/{match_id}").json()["strip"]
        assert 1 < len(strip) <= 6
        for n in range(len(strip)):
            assert f"/review/{match_id}/frames/{n}.jpg" in page.text
        frame = client.get(f"/review/{match_id}/frames/0.jpg")
        assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
        assert is_greyscale(frame.content)
        sharp = client.get(f"/review/{match_id}/frames/0.jpg?reveal=1")
        assert sharpness(frame.content) * 5 < sharpness(sharp.content)
        preview = client.get(f"/review/{match_id}/preview.jpg")
        assert preview.status_code == 200
        assert client.get(f"/review/{match_id}/frames/{len(strip)}.jpg").status_code == 404
        assert client.get(f"/review/{world.hash_match}/frames/0.jpg").status_code == 422


# -- exposure -------------------------------------------------------------------------------


def test_each_reviewers_unblurred_looks_are_counted_and_a_break_is_suggested_past_the_limit(
    world: World,
) -> None:
    ids = world.case("RV-X")
    limit = world.safe.settings.reveals_before_break
    with browser(world.web, "rev2") as client:
        assert client.get("/api/v1/review/reveals").json()["count"] == 0
        for _ in range(3):
            client.get(f"/review/{ids[0]}/preview.jpg?reveal=1")
        looks = client.get("/api/v1/review/reveals").json()
        assert looks == {**looks, "username": "rev2", "count": 3, "limit": limit}
        assert not looks["past_limit"]
        assert f"3 of {limit}" in client.get("/review").text
        for _ in range(limit - 3):
            client.get(f"/review/{ids[0]}/faces/found.jpg?reveal=1")
        assert client.get("/api/v1/review/reveals").json()["past_limit"]
        assert "good moment for a break" in client.get(f"/review/{ids[0]}").text


def test_a_lighter_blur_level_is_lighter_but_still_blurred(world: World) -> None:
    ids = world.case("RV-L")
    with browser(world.web, "rev") as strong, browser(world.web, "soft") as light:
        hidden = strong.get(f"/review/{ids[0]}/preview.jpg?greyscale=false").content
        softer = light.get(f"/review/{ids[0]}/preview.jpg?greyscale=false").content
        sharp = light.get(f"/review/{ids[0]}/preview.jpg?reveal=1").content
    assert sharpness(hidden) < sharpness(softer) < sharpness(sharp)
    assert not is_greyscale(softer)


# -- who may ------------------------------------------------------------------------------


def test_an_auditor_cannot_confirm_or_look_and_a_counselor_has_no_queue(world: World) -> None:
    match_id, *_ = world.case("RV-P")
    with browser(world.web, "aud") as client:
        token = form_token(client.get("/").text)
        assert client.get("/review").status_code == 403
        assert client.get(f"/review/{match_id}/preview.jpg").status_code == 403
        assert client.get(f"/review/{match_id}/faces/found.jpg").status_code == 403
        confirmed = client.post(
            f"/review/{match_id}/decision", data={"csrf_token": token, "decision": "confirm"}
        )
        assert confirmed.status_code == 403
        bulk = client.post(
            "/review/decisions",
            data={"csrf_token": token, "match_id": str(match_id), "decision": "confirm"},
        )
        assert bulk.status_code == 403
    with browser(world.web, "coun") as client:
        assert client.get("/review").status_code == 403
        assert client.get("/api/v1/review/queue").status_code == 403
    token = api_token(world.safe, "aud")
    with browser(world.web) as client:
        refused = client.post(
            "/api/v1/matches/decisions",
            json={"match_ids": [match_id], "decision": "confirm"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert refused.status_code == 403
        assert client.get("/review").status_code == 303  # not signed in: to the sign-in page
    assert world.status(match_id) == "pending"
    with browser(world.web, "adm") as client:
        assert client.get(f"/review/{match_id}").status_code == 200


# -- the API ------------------------------------------------------------------------------


def test_the_api_lists_shows_serves_pictures_and_decides_with_a_bearer_token(
    world: World,
) -> None:
    a, b, c, *_ = world.case("RV-API")
    bearer = {"Authorization": f"Bearer {api_token(world.safe, 'rev')}"}
    with browser(world.web) as client:
        queue = client.get("/api/v1/review/queue?case=RV-API", headers=bearer).json()
        assert [i["match_id"] for i in queue["items"]] == sorted(
            [a, b, c], key=[i["match_id"] for i in queue["items"]].index
        )
        assert queue["items"][0]["threshold"] == 0.6 and queue["total"] == 3
        detail = client.get(f"/api/v1/matches/{a}", headers=bearer).json()
        assert detail["view"]["kind"] == "face" and detail["view"]["case"] == "RV-API"
        assert detail["sightings"] and detail["sightings_total"] >= 1
        assert "face distance" in detail["view"]["why"] and detail["strip"] == []
        before = world.events("media.revealed")
        preview = client.get(f"/api/v1/matches/{a}/preview", headers=bearer)
        assert preview.headers["content-type"] == "image/jpeg"
        assert preview.headers["cache-control"] == "no-store"
        face = client.get(f"/api/v1/matches/{a}/faces/reference", headers=bearer)
        assert face.status_code == 200 and world.events("media.revealed") == before
        sharp = client.get(f"/api/v1/matches/{a}/preview?reveal=true", headers=bearer)
        assert sharp.status_code == 200 and world.events("media.revealed") == before + 1
        decided = client.post(
            "/api/v1/matches/decisions",
            json={"match_ids": [a, b], "decision": "confirm", "category": "synthetic"},
            headers=bearer,
        )
        assert decided.status_code == 200
        assert [d["status"] for d in decided.json()] == ["confirmed", "confirmed"]
        no_reason = client.post(
            "/api/v1/matches/decisions",
            json={"match_ids": [c], "decision": "reject"},
            headers=bearer,
        )
        assert no_reason.status_code == 422 and world.status(c) == "pending"
        for body in (
            {"match_ids": [], "decision": "confirm"},
            {"match_ids": [2**40], "decision": "confirm"},
            {"match_ids": [c], "decision": "delete"},
            {"match_ids": [c], "decision": "confirm", "category": "other"},
        ):
            bad = client.post("/api/v1/matches/decisions", json=body, headers=bearer)
            assert bad.status_code == 422, body
        missing = client.post(
            "/api/v1/matches/decisions",
            json={"match_ids": [99999999], "decision": "escalate"},
            headers=bearer,
        )
        assert missing.status_code == 404
        reopened = client.post(
            "/api/v1/matches/decisions",
            json={"match_ids": [a], "decision": "reopen", "note": "second thoughts"},
            headers=bearer,
        )
        assert reopened.json()[0]["status"] == "pending"
        looks = client.get("/api/v1/review/reveals", headers=bearer).json()
        assert looks["username"] == "rev" and looks["count"] >= 1
        assert client.get("/api/v1/matches/99999999", headers=bearer).status_code == 404
        assert client.get(f"/api/v1/matches/{a}/faces/left", headers=bearer).status_code == 422
        assert client.get("/api/v1/review/queue?limit=501", headers=bearer).status_code == 422


def test_every_review_route_is_in_the_api_schema_with_bounded_parameters(world: World) -> None:
    with browser(world.web) as client:
        schema = client.get("/api/v1/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/review/queue",
        "/api/v1/review/reveals",
        "/api/v1/matches/{match_id}",
        "/api/v1/matches/{match_id}/preview",
        "/api/v1/matches/{match_id}/faces/{side}",
        "/api/v1/matches/{match_id}/frames/{number}",
        "/api/v1/matches/decisions",
    ):
        assert path in paths, path
    parameters = paths["/api/v1/matches/{match_id}"]["get"]["parameters"]
    match_id = next(p for p in parameters if p["name"] == "match_id")
    assert match_id["schema"]["maximum"] == 2**31 - 1


def test_a_hash_match_says_it_is_the_same_file_and_shows_no_faces(world: World) -> None:
    with browser(world.web, "rev") as client:
        page = client.get(f"/review/{world.hash_match}")
        assert page.status_code == 200
        assert "The same file as one the victim registered." in page.text
        assert f"/review/{world.hash_match}/faces/" not in page.text
        assert client.get(f"/review/{world.hash_match}/faces/found.jpg").status_code == 422


def test_the_review_pages_are_in_korean_for_a_korean_reviewer(world: World) -> None:
    user(world.safe, "kor", "reviewer", language="ko")
    match_id, *_ = world.case("RV-KO")
    with browser(world.web, "kor") as client:
        queue = client.get("/review?case=RV-KO").text
        assert "<h1>검토 대기열</h1>" in queue and "단축키" in queue
        detail = client.get(f"/review/{match_id}").text
        assert "일치한 이유" in detail and "흐림 없이 보기" in detail
        assert_clean_page(detail)
