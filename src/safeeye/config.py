"""Settings from the environment (prefix ``SAFEEYE_``) or ``.env``: one object, passed down."""

from __future__ import annotations

import base64
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

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

    # A .env file is read only from a path given or from the data dir (``Settings.load``),
    # never from whatever directory a command happens to run in.
    model_config = SettingsConfigDict(
        env_prefix="SAFEEYE_", env_file=None, env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Path("./safeeye-data")
    blob_url: str = Field(
        default="",
        description="Where blobs are kept: unset, DATA_DIR/blobs; s3://BUCKET/PREFIX (a bucket "
        "every machine reaches; ?endpoint=URL&region=NAME for a server other than AWS's) or "
        "file:///FOLDER.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data dir (WAL)."
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 bytes. Default: generated into DATA_DIR/master.key (0600).",
    )
    actor: str = Field(default="", description="Who is acting, for the audit log (CLI).")
    broker_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="The Celery broker `safeeye worker` uses: redis:// or amqp:// (RabbitMQ).",
    )
    # Takedown: who asks (every notice names the organisation, its authority and a contact),
    # and how notices reach recipients (each connector reads its own settings here).
    org_name: str = Field(default="Digital Sexual Crime Safety Support Center")
    org_address: str = Field(default="")
    org_email: str = Field(default="takedown@localhost")
    org_phone: str = Field(default="")
    org_authority: str = Field(
        default="a support organisation designated under the Telecommunications Business Act "
        "art. 22-5 (Enforcement Decree art. 30-5), acting for the victim with her consent",
        description="By what right the organisation asks (quoted in every notice).",
    )
    org_signatory: str = Field(default="Deletion-support officer")
    connector_ca_bundle: Path | None = Field(
        default=None, description="CA certificates connectors trust (default: the system's)."
    )
    rdap_bootstrap_url: str = Field(
        default="https://data.iana.org/rdap/",
        description="Where the IANA RDAP bootstrap files (dns.json, ipv4.json, ...) are read to "
        "find abuse contacts; RDAP servers on private addresses need SAFEEYE_FETCH_ALLOWLIST.",
    )
    smtp_host: str = Field(default="127.0.0.1")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str = Field(default="")
    smtp_password: SecretStr | None = Field(default=None)
    smtp_starttls: bool = Field(default=False)
    api_max_items: int = Field(
        default=5000, ge=1, description="Most notices in one request of the HTTPS batch API."
    )
    stopncii_subscription_key: SecretStr | None = Field(
        default=None, description="StopNCII's API subscription key (Ocp-Apim-Subscription-Key)."
    )
    stopncii_submit_key: SecretStr | None = Field(
        default=None, description="StopNCII's function key for SubmitHashes."
    )
    export_dir: Path | None = Field(
        default=None,
        description="Where the export connector writes sheets and PDF reports (private). "
        "Default: DATA_DIR/exports.",
    )
    pdf_font_file: Path | None = Field(
        default=None,
        description="An OpenType font with Korean glyphs for PDF reports (.ttc/.otf/.ttf). "
        "Default: Noto Sans CJK from Debian's fonts-noto-cjk, found under /usr/share/fonts.",
    )
    evidence_screenshots: bool = Field(
        default=True,
        description="Evidence packages include a blurred screenshot of the page (headless "
        "Chromium through the fetcher's SSRF guard).",
    )
    auto_send_reuploads: bool = Field(
        default=False,
        description="Send notices about re-uploads of already-confirmed media without waiting "
        "for an officer's approval.",
    )
    resend_hours: float = Field(default=24.0, gt=0, description="Re-send an unanswered notice.")
    recheck_hours: float = Field(
        default=6.0, gt=0, description="How often a sent notice's URL is fetched again."
    )
    queue: str = Field(
        default="safeeye", description="The broker queue the workers take tasks from."
    )
    task_lease_seconds: float = Field(
        default=120.0,
        gt=0.0,
        description="How long a task holds its row without a heartbeat before another worker "
        "may take it over (a worker that died).",
    )
    audit_checkpoint_file: Path | None = Field(
        default=None,
        description="Where signed audit checkpoints are kept, outside the database. Default: "
        "DATA_DIR/audit-checkpoint.json; better on another disk or host.",
    )
    audit_witness: str = Field(
        default="",
        description="Where each checkpoint is also sent: an http(s) URL (POST of the JSON), "
        "'syslog' (the local syslog socket) or 'syslog://HOST:PORT' (UDP).",
    )

    # Accounts (safeeye.accounts): sessions, login throttling, passwords.
    session_idle_minutes: float = Field(
        default=30.0, gt=0, description="A web session ends after this long without a request."
    )
    session_lifetime_hours: float = Field(
        default=12.0, gt=0, description="A web session ends this long after login, used or not."
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed logins to one account name within the window before it is throttled.",
    )
    login_max_failures_per_address: int = Field(
        default=20,
        ge=1,
        description="Failed logins from one client address (an IPv6 /64) "
        "within the window before it is throttled.",
    )
    login_window_minutes: float = Field(
        default=15.0, gt=0, description="The sliding window that failed logins are counted in."
    )
    password_min_length: int = Field(default=12, ge=8, le=128)

    # Reviewing (safeeye.review): how much a reviewer is asked to look at.
    reveals_before_break: int = Field(
        default=40,
        ge=1,
        le=10_000,
        description="Unblurred looks a reviewer may take in one day before the review page "
        "suggests a break (the admin's dashboard shows who is past it).",
    )
    workday_timezone: str = Field(
        default="Asia/Seoul",
        description="The time zone whose midnight starts a reviewer's day (IANA name).",
    )

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
    signal_modules: str = Field(
        default="",
        description="Python modules (comma-separated) imported at start-up in every process, "
        "analysis workers included: the signals they register are computed, stored and shown "
        "like the built-in ones.",
    )

    @field_validator("workday_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"not a known time zone: {value!r}") from exc
        return value

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

    @property
    def audit_checkpoint_path(self) -> Path:
        return self.audit_checkpoint_file or self.data_dir / "audit-checkpoint.json"

    @classmethod
    def load(cls, env_file: Path | None = None, **overrides: Any) -> Settings:
        """Settings from ``SAFEEYE_*`` variables and a ``.env`` file: the one named by
        ``env_file`` or ``SAFEEYE_ENV_FILE``, else ``DATA_DIR/.env`` if it exists."""
        path = env_file or os.environ.get("SAFEEYE_ENV_FILE")
        if path is None:
            data_dir = overrides.get("data_dir") or os.environ.get("SAFEEYE_DATA_DIR")
            candidate = Path(data_dir or cls.model_fields["data_dir"].default) / ".env"
            path = candidate if candidate.is_file() else None
        elif not Path(path).is_file():
            raise ConfigError(f"the settings file {path} does not exist")
        return cls(_env_file=path, **overrides)  # type: ignore[call-arg]

    @property
    def master_key_path(self) -> Path:
        return self.data_dir / MASTER_KEY_FILE

    def ensure_data_dir(self) -> Path:
        """Create the data directory if needed and make it private (0700) whatever it was."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_dir.chmod(0o700)
        return self.data_dir

    def load_master_key(self, *, create: bool = True) -> bytes:
        """The 32-byte master key: from settings, else from the key file, else (``create``)
        generated there; ``ConfigError`` (code ``no_master_key``) when it is missing otherwise.

        A generated key is written with 0600 permissions; losing it makes every stored
        reference and media file unreadable, so back it up separately from the data.
        """
        if self.master_key is not None:
            return _decode_key(self.master_key.get_secret_value(), "SAFEEYE_MASTER_KEY")
        path = self.ensure_data_dir() / MASTER_KEY_FILE
        if path.exists():
            return read_key_file(path)
        if not create:
            raise ConfigError(
                f"there is no {MASTER_KEY_FILE} in the data dir", code="no_master_key"
            )
        key = secrets.token_bytes(32)
        if not write_key_file(path, key):  # another process created it first: use theirs
            return read_key_file(path)
        return key


def read_key_file(path: Path) -> bytes:
    """The key in a key file (base64 of 32 bytes)."""
    return _decode_key(path.read_text().strip(), path.name)


def write_key_file(path: Path, key: bytes) -> bool:
    """Write ``key`` to ``path`` (0600) complete or not at all; False if ``path`` exists."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(key).decode() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic, and never replaces an existing key
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ConfigError(f"{where} is not valid base64") from exc
    if len(key) != 32:
        raise ConfigError(f"{where} must hold 32 bytes (base64), found {len(key)}")
    return key
