"""The README's main job: the demo finds the demo people and the re-uploaded known photo."""

from __future__ import annotations

from conftest import TESTER
from safeeye.app import SafeEye
from safeeye.commands.serve import load_demo
from safeeye.demo import run_demo
from safeeye.review.queue import review_queue


def test_demo_finds_faces_in_the_video_and_the_reupload_by_hash(app: SafeEye) -> None:
    summary = run_demo(app, TESTER)
    found = {
        (r["input"].rsplit("/", 1)[-1], m["case"], m["kind"])
        for r in summary["results"]
        for m in r["matches"]
    }
    assert ("short_hamilton_clip.mp4", "DEMO-LMM", "face") in found
    assert ("reupload-mirrored-captioned.jpg", "DEMO-OBAMA", "hash") in found
    assert not any(name == "biden.jpg" for name, _, _ in found)
    again = run_demo(app, TESTER)  # a second run registers nothing twice and reuses the scans
    assert all(r["reused"] for r in again["results"][:4])


def test_serve_demo_loads_only_on_an_installation_without_cases(app: SafeEye) -> None:
    assert load_demo(app, TESTER) is True  # no cases: the demo data, scanned
    queue = app.call(TESTER, review_queue)
    assert {item.case for item in queue.items} == {"DEMO-LMM", "DEMO-OBAMA"}
    assert load_demo(app, TESTER) is False  # cases exist: never mixed into real work
