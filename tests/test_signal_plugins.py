"""Signals are plugins: one registered class is computed, stored and shown with no other code,
inline or in isolated workers that import the modules the settings name."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image, ImageOps
from sqlalchemy import select
from typer.testing import CliRunner

from conftest import FACES, VIDEO, make_app, make_settings
from safeeye import cli
from safeeye.app import SafeEye
from safeeye.config import Settings
from safeeye.db.models import SignalValue
from safeeye.errors import ConfigError
from safeeye.media.decode import MediaInfo
from safeeye.media.frames import Frame
from safeeye.pipeline.analyze import FrameAnalysis, MediaAnalysis, merge_parts
from safeeye.pipeline.detectors import Detectors
from safeeye.pipeline.scan import Scanner
from safeeye.signals import registry
from safeeye.signals.base import (
    AnalysedMedia,
    FrameSignal,
    LazyModel,
    MediaSignal,
    SignalContext,
    Target,
)
from safeeye.signals.hashes import hash_file
from safeeye.signals.pdq import PdqHash
from safeeye.signals.variants import VariantHash


@pytest.fixture
def forget() -> Iterator[list[str]]:
    """Names of the signals a test registers, unregistered when it ends."""
    names: list[str] = []
    yield names
    for name in names:
        registry.unregister(name)


def _stored(app: SafeEye, signal: str) -> list[tuple[int | None, int, Any]]:
    with app.db.session(read_only=True) as session:
        rows = session.execute(
            select(SignalValue).where(SignalValue.signal == signal).order_by(SignalValue.id)
        ).scalars()
        return [(r.frame_index, r.version, r.value) for r in rows]


def _scan_json(app: SafeEye, monkeypatch: pytest.MonkeyPatch, path: Path) -> dict[str, Any]:
    monkeypatch.setitem(cli._state, "app", app)
    result = CliRunner().invoke(cli.app, ["scan", str(path), "--json"])
    assert result.exit_code == 0, result.output
    (scanned,) = json.loads(result.stdout)
    return scanned  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Shape:
    width: int
    height: int


class ShapeModel(LazyModel[np.ndarray, Shape]):
    """A stand-in model: the picture's size."""

    def _load(self) -> None:
        pass

    def _predict(self, inputs: np.ndarray) -> Shape:
        return Shape(int(inputs.shape[1]), int(inputs.shape[0]))


def test_a_signal_defined_in_a_test_is_stored_and_shown_by_scan_json(
    any_db_app: SafeEye, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, forget: list[str]
) -> None:
    app = any_db_app
    registry.register_model("test_shape_model")(lambda settings, threads: ShapeModel())

    @registry.register
    class FrameShape(FrameSignal[Shape]):
        name: ClassVar[str] = "test_shape"
        version: ClassVar[int] = 2
        models: ClassVar[tuple[str, ...]] = ("test_shape_model",)

        def compute(self, frame: Frame, context: SignalContext) -> Shape:
            model: ShapeModel = context.model("test_shape_model")
            return model.predict(frame.image)

        def encode(self, value: Shape) -> Any:
            return {"width": value.width, "height": value.height}

        def decode(self, data: Any) -> Shape:
            return Shape(**data)

        def summary(self, values: Sequence[Shape]) -> Any:
            return sorted({f"{v.width}x{v.height}" for v in values})

    @registry.register
    class ShapedFrames(MediaSignal[int]):
        name: ClassVar[str] = "test_shaped_frames"
        after: ClassVar[tuple[str, ...]] = ("test_shape",)

        def compute(self, media: AnalysedMedia, context: SignalContext) -> int:
            return sum(1 for frame in media.frames if "test_shape" in frame.values)

    forget += ["test_shape", "test_shaped_frames"]
    photo = FACES / "obama.jpg"
    width, height = ImageOps.exif_transpose(Image.open(photo)).size

    result = _scan_json(app, monkeypatch, photo)
    signals = result["signals"]
    assert signals["test_shape"] == [f"{width}x{height}"]
    assert signals["test_shaped_frames"] == 1
    assert _stored(app, "test_shape") == [(0, 2, {"width": width, "height": height})]
    assert _stored(app, "test_shaped_frames") == [(None, 1, 1)]
    # The built-in signals are summarised too, and the fields from before are unchanged.
    assert result["faces"] == 1 and signals["faces"] == {"count": 1, "frames": 1}
    assert signals["nudity"]["score"] == result["sexual_score"]
    assert len(signals["pdq"]["hash"]) == 64 and signals["pdq"]["frames"] == 1
    assert signals["vpdq"] is None and signals["local_features"] is None  # a still; no known
    assert set(signals) == {s.name for s in registry.signals()}

    # Seen again elsewhere: not analysed again; the values come back from the database.
    again = tmp_path / "again.jpg"
    shutil.copy(photo, again)
    reused = _scan_json(app, monkeypatch, again)
    assert reused["reused"] and reused["sha256"] == result["sha256"]
    for name in ("test_shape", "test_shaped_frames", "pdq", "faces", "nudity", "vpdq"):
        assert reused["signals"][name] == signals[name], name
    assert len(_stored(app, "test_shape")) == 1


def test_a_stored_value_of_another_version_is_not_read_back(
    app: SafeEye, tmp_path: Path, forget: list[str]
) -> None:
    def version(number: int) -> None:
        registry.unregister("test_versioned")

        @registry.register
        class Versioned(FrameSignal[int]):
            name: ClassVar[str] = "test_versioned"
            version: ClassVar[int] = number

            def compute(self, frame: Frame, context: SignalContext) -> int:
                return number

            def summary(self, values: Sequence[int]) -> Any:
                return values[0]

    forget.append("test_versioned")
    version(1)
    scanner = Scanner(app)
    (first,) = scanner.scan_paths([FACES / "biden.jpg"])
    assert first.signals["test_versioned"] == 1
    version(2)
    copy = tmp_path / "copy.jpg"
    shutil.copy(FACES / "biden.jpg", copy)
    (again,) = scanner.scan_paths([copy])
    assert again.reused and again.signals["test_versioned"] is None
    assert _stored(app, "test_versioned") == [(0, 1, 1)]


def test_signal_modules_named_by_the_setting_run_in_the_isolated_workers(
    tmp_path: Path, detectors: Detectors
) -> None:
    settings = make_settings(
        tmp_path / "data", analysis_isolation="process", signal_modules="signal_plugin"
    )
    app = make_app(settings, detectors)
    scanner = Scanner(app)
    photo_path = FACES / "obama.jpg"
    try:
        photo, video = scanner.scan_paths([photo_path, VIDEO])
        workers = set()
        for result, path in ((photo, photo_path), (video, VIDEO)):
            assert result.error is None
            workers.update(result.signals["test_analysed_by"])
            assert result.signals["test_file_bytes"] == path.stat().st_size
        # Computed in a worker process, which imported the module itself.
        assert workers and os.getpid() not in workers
        assert video.frames_analyzed > 1 and video.signals["vpdq"]["features"] > 0
        rows = _stored(app, "test_analysed_by")
        assert len(rows) == photo.frames_analyzed + video.frames_analyzed
        assert {value for _, _, value in rows} == workers
        assert _stored(app, "test_file_bytes") == [
            (None, 1, photo_path.stat().st_size),
            (None, 1, VIDEO.stat().st_size),
        ]
    finally:
        scanner.close()
        registry.unregister("test_analysed_by")
        registry.unregister("test_file_bytes")
        sys.modules.pop("signal_plugin", None)
        app.close()


def test_a_setting_that_names_a_missing_module_is_a_config_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, signal_modules="safeeye_no_such_signals")
    with pytest.raises(ConfigError, match="safeeye_no_such_signals") as raised:
        Detectors.from_settings(settings)
    assert raised.value.code == "signal_module"


def test_signals_come_after_the_signals_they_read_and_names_are_checked(
    forget: list[str],
) -> None:
    @registry.register
    class Aardvark(FrameSignal[int]):
        """Sorted first by name, but reads a signal registered after it."""

        name: ClassVar[str] = "aardvark_test"
        after: ClassVar[tuple[str, ...]] = ("zebra_test",)

        def compute(self, frame: Frame, context: SignalContext) -> int:
            return int(context.values["zebra_test"]) + 1

        def summary(self, values: Sequence[int]) -> Any:
            return max(values)

    forget.append("aardvark_test")
    with pytest.raises(ConfigError, match="zebra_test"):
        registry.signals()  # it reads a signal nobody registered

    @registry.register
    class Zebra(FrameSignal[int]):
        name: ClassVar[str] = "zebra_test"

        def compute(self, frame: Frame, context: SignalContext) -> int:
            return 41

        def summary(self, values: Sequence[int]) -> Any:
            return max(values)

    forget.append("zebra_test")
    order = [s.name for s in registry.signals()]
    assert order.index("zebra_test") < order.index("aardvark_test")
    assert order.index("pdq") < order.index("vpdq")
    assert {"pdq", "faces", "nudity", "local_features", "vpdq"} <= set(order)

    class Impostor(Zebra):
        pass

    with pytest.raises(ConfigError, match="two signals"):
        registry.register(Impostor)

    class Unnamed(Zebra):
        name: ClassVar[str] = "Not A Name"

    with pytest.raises(ConfigError, match="needs a name"):
        registry.register(Unnamed)

    class Misplaced(Zebra):
        name: ClassVar[str] = "misplaced_test"
        applies_to: ClassVar[frozenset[Target]] = frozenset({Target.FILE})

    with pytest.raises(ConfigError, match="applies only to frame, still"):
        registry.register(Misplaced)  # a frame signal's compute takes a frame, not a file


def test_whole_media_signals_see_every_part_of_a_split_video() -> None:
    """The parts of a video analysed in two workers join into one analysis; whole-file values
    come from the part that computed them and vPDQ covers both parts' frames."""

    def frame(index: int, seconds: float, bits: int) -> FrameAnalysis:
        pdq = PdqHash(bits.to_bytes(32, "big"), 90)
        return FrameAnalysis(index, seconds, "sample", {"pdq": [VariantHash("original", pdq)]})

    hashes = hash_file(VIDEO)
    first = MediaAnalysis(hashes, frames=[frame(0, 0.0, 1), frame(30, 1.0, 2)])
    first.values["test_provenance"] = {"manifest": None}
    second = MediaAnalysis(hashes, frames=[frame(60, 2.0, 3)])
    for part in (first, second):
        part.info = MediaInfo("video", "mp4", 640, 360, 3.0, 90, False)
    merged = merge_parts([first, second])
    assert merged.values["test_provenance"] == {"manifest": None}
    assert [f.frame_number for f in merged.vpdq] == [0, 30, 60]
    assert merged.summaries()["vpdq"] == {"features": 3}


def test_a_model_loads_once_when_two_threads_predict_at_the_same_moment() -> None:
    class Slow(LazyModel[int, int]):
        loads = 0

        def _load(self) -> None:
            Slow.loads += 1
            time.sleep(0.2)  # both threads arrive while it loads

        def _predict(self, inputs: int) -> int:
            return inputs * 2

    model = Slow()
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(model.predict(21))) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [42, 42] and Slow.loads == 1 and model.loaded
