"""The review queue puts what hurts most first and pages on the server."""

from __future__ import annotations

import pytest

from conftest import FACES, act
from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, add_known, create_case
from safeeye.errors import PermissionDenied
from safeeye.pipeline.scan import Scanner
from safeeye.review.decisions import escalate
from safeeye.review.matches import list_matches
from safeeye.review.queue import review_queue
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
