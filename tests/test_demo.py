"""The README's main job: the demo finds the demo people and the re-uploaded known photo."""

from __future__ import annotations

from conftest import TESTER
from safeeye.app import SafeEye
from safeeye.demo import run_demo


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
