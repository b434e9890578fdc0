"""Settings from the environment (prefix ``SAFEEYE_``) or ``.env``: one object, passed down."""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from safeeye.errors import ConfigError

MASTER_KEY_FILE = "master.key"


@dataclass(frozen=True)
class MediaLimits:
    """What the decoder refuses, so hostile media cannot exhaust memory or time."""

    max_bytes: int = 2 * 1024**3
    max_image_pixels: int = 64_000_000
    max_video_pixels: int = 4096 * 2304
    max_video_seconds: float = 4 * 3600.0
    max_frames: int = 20_000
    max_animation_frames: int = 2_000
    decode_timeout_seconds: float = 600.0


@dataclass(frozen=True)
class SamplingPlan:
    """Which video frames are analysed: keyframes, one every ``interval`` seconds, scene changes."""

    interval_seconds: float = 1.0
    keyframes: bool = True
    scene_changes: bool = True
    scene_threshold: float = 0.07  # mean luma change of a 32x18 thumbnail; motion stays < 0.05
    min_gap_seconds: float = 0.4
    shot_lookahead_seconds: float = 0.5


class Settings(BaseSettings):
    """Every setting of safeeye. Build one with ``Settings()`` and pass it down."""

    model_config = SettingsConfigDict(
        env_prefix="SAFEEYE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Path("./safeeye-data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data dir (WAL)."
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 bytes. Default: generated into DATA_DIR/master.key (0600).",
    )
    actor: str = Field(default="", description="Who is acting, for the audit log (CLI).")

    # Matching thresholds.
    pdq_threshold: int = Field(default=31, ge=0, le=256)
    pdq_min_quality: int = Field(default=50, ge=0, le=100)
    face_distance: float = Field(default=0.6, gt=0.0, le=2.0)
    face_detector: Literal["hog", "cnn"] = "hog"
    face_upsample: int = Field(default=0, ge=0, le=3)
    face_max_side: int = Field(default=1280, ge=160)
    face_small_side: int = Field(default=800, ge=0)
    face_encoder: Literal["onnx", "dlib"] = "onnx"
    face_min_size: int = Field(default=40, ge=16)
    sexual_threshold: float = Field(default=0.5, ge=0.0, le=1.0)

    # Media limits and video sampling.
    max_media_bytes: int = 2 * 1024**3
    max_image_pixels: int = 64_000_000
    max_video_seconds: float = 4 * 3600.0
    video_sample_seconds: float = 1.0
    fetch_allowlist: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="Hosts or networks that may be fetched although private."
    )
    fetch_host_interval: float = Field(
        default=0.5, ge=0.0, description="Seconds between two requests to one host."
    )
    fetch_total_timeout: float = Field(default=120.0, gt=0.0)
    fetch_max_page_bytes: int = Field(default=20 * 1024**2, gt=0)
    visit_budget_seconds: float = Field(
        default=900.0, gt=0.0, description="A visit stops after this long; the next one resumes."
    )
    scan_workers: int = Field(default=0, ge=0, description="0: one per CPU core.")
    analysis_isolation: Literal["process", "inline"] = Field(
        default="process",
        description="process: each file is analysed in a supervised worker process that is "
        "killed when it breaks the time or memory budget (the file gets an error, the scan goes "
        "on). inline: in the calling process, with NO time or memory budget; for tests and "
        "debugging only.",
    )
    analysis_timeout: float = Field(
        default=60.0, gt=0.0, description="Seconds one still image (or animation) may take."
    )
    analysis_seconds_per_video_second: float = Field(
        default=2.0, ge=0.0, description="Extra seconds a video may take per second it lasts."
    )
    analysis_max_memory_mb: int = Field(
        default=2048,
        ge=16,
        description="Resident memory (MB) analysing one file may add to a worker on top of its "
        "loaded models; a worker going over is killed and the file gets an error.",
    )

    @field_validator("fetch_allowlist", mode="before")
    @classmethod
    def _split_allowlist(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def database(self) -> str:
        """The database URL in force."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'safeeye.db').resolve()}"

    @property
    def media_limits(self) -> MediaLimits:
        return MediaLimits(
            max_bytes=self.max_media_bytes,
            max_image_pixels=self.max_image_pixels,
            max_video_seconds=self.max_video_seconds,
        )

    @property
    def sampling(self) -> SamplingPlan:
        return SamplingPlan(interval_seconds=self.video_sample_seconds)

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    def ensure_data_dir(self) -> Path:
        """Create the data directory (0700) if needed and return it."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.data_dir

    def load_master_key(self) -> bytes:
        """The 32-byte master key: from settings, else from the key file, else generated there.

        A generated key is written with 0600 permissions; losing it makes every stored
        reference and media file unreadable, so back it up separately from the data.
        """
        if self.master_key is not None:
            return _decode_key(self.master_key.get_secret_value(), "SAFEEYE_MASTER_KEY")
        path = self.ensure_data_dir() / MASTER_KEY_FILE
        if path.exists():
            return _decode_key(path.read_text().strip(), str(path.name))
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(key).decode() + "\n")
        return key


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ConfigError(f"{where} is not valid base64") from exc
    if len(key) != 32:
        raise ConfigError(f"{where} must hold 32 bytes (base64), found {len(key)}")
    return key
