"""The review queue puts what hurts most first (a minor's case, then the strongest match) and
pages on the server."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from conftest import FACES, act
from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, add_known, create_case
from safeeye.db.models import Case
from safeeye.errors import NotFoundError, PermissionDenied, ValidationError
from safeeye.pipeline.scan import Scanner
from safeeye.review.decisions import escalate
from safeeye.review.matches import list_matches
from safeeye.review.queue import match_detail, next_in_queue, review_queue
from safeeye.work import Actor, Role

PHOTOS = ("obama2.jpg", "obama3.jpg", "two_people.jpg")


@pytest.fixture
def queued(any_db_app: SafeEye) -> SafeEye:
    """Case Q-1 has three face matches; case Q-2 registered one of the photos as known media,
    so that photo is also an exact hash match."""
    app = any_db_app
    act(app, create_case, "Q-1")
    act(app, add_faces, "Q-1", [FACES / "obama.jpg"])
    act(app, create_case, "Q-2")
    act(app, add_known, "Q-2", [FACES / "two_people.jpg"])
    Scanner(app).scan_paths([FACES / name for name in PHOTOS])
    return app


def test_the_strongest_match_comes_first_then_the_rest_by_distance_against_threshold(
    queued: SafeEye,
) -> None:
    page = act(queued, review_queue)
    pending = act(queued, list_matches, status="pending")
    assert page.total == len(page.items) == len(pending) >= 4
    first = page.items[0]
    assert (first.case, first.kind, first.strength) == ("Q-2", "hash", 0.0)  # the same file
    strengths = [item.strength for item in page.items]
    assert strengths == sorted(strengths)
    assert all(0 <= s <= 1 for s in strengths)
    assert all(item.sightings == 1 and item.first_seen for item in page.items)


def test_the_queue_pages_filters_by_case_and_status(queued: SafeEye) -> None:
    everything = act(queued, review_queue).items
    second = act(queued, review_queue, limit=2, offset=2)
    assert [i.match_id for i in second.items] == [i.match_id for i in everything[2:4]]
    assert second.total == len(everything)
    assert {i.case for i in act(queued, review_queue, case="Q-1").items} == {"Q-1"}
    act(queued, escalate, [everything[-1].match_id])
    escalated = act(queued, review_queue, status="escalated")
    assert [i.match_id for i in escalated.items] == [everything[-1].match_id]
    assert act(queued, review_queue).total == len(everything) - 1


def test_only_reviewers_read_the_queue(queued: SafeEye) -> None:
    counselor = Actor("user:c", frozenset({Role.COUNSELOR}))
    with pytest.raises(PermissionDenied):
        queued.call(counselor, review_queue)


def _flag_minor(app: SafeEye, code: str) -> None:
    with app.db.session() as session:
        session.execute(update(Case).where(Case.code == code).values(minor=True))


def test_a_minors_weaker_match_comes_before_another_cases_stronger_one(queued: SafeEye) -> None:
    before = act(queued, review_queue).items
    assert before[0].case == "Q-2" and before[0].strength == 0.0  # the exact file
    _flag_minor(queued, "Q-1")
    after = act(queued, review_queue).items
    minors = [item for item in after if item.minor]
    assert minors and {item.case for item in minors} == {"Q-1"}
    assert after[: len(minors)] == minors  # every minor's match first...
    assert minors[-1].strength > 0.0  # ...the weaker face matches before the exact file
    assert [i.strength for i in minors] == sorted(i.strength for i in minors)
    assert after[len(minors)].case == "Q-2"


def test_the_next_match_follows_the_queues_order_even_after_a_decision(queued: SafeEye) -> None:
    _flag_minor(queued, "Q-1")
    order = [item.match_id for item in act(queued, review_queue).items]
    nexts = [act(queued, next_in_queue, match_id) for match_id in order]
    assert nexts == [*order[1:], None]
    act(queued, escalate, [order[0]])  # decided: the next is still the one after it
    assert act(queued, next_in_queue, order[0]) == order[1]
    assert act(queued, next_in_queue, order[1], status="escalated") is None
    assert act(queued, next_in_queue, order[2], case="Q-2") in (None, *order[3:])
    with pytest.raises(ValidationError):
        act(queued, review_queue, status="confirmed")
    with pytest.raises(ValidationError):
        act(queued, review_queue, limit=0)
    with pytest.raises(NotFoundError):
        act(queued, next_in_queue, 10**6)


def test_a_matchs_detail_says_why_and_where_it_was_seen(queued: SafeEye) -> None:
    first = act(queued, review_queue).items[0]
    detail = act(queued, match_detail, first.match_id)
    assert detail.view.match_id == first.match_id and detail.view.exact
    assert detail.sightings_total == 1 and detail.sightings[0].location.endswith(".jpg")
    assert detail.first_seen == first.first_seen and not detail.minor
