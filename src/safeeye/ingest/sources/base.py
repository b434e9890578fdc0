"""The interface of a source kind (with its typed config), and what a visit hands it."""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, TypeVar

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict
from sqlalchemy import select

from safeeye.db.models import Page, Source
from safeeye.db.types import utcnow
from safeeye.errors import ValidationError, error_text
from safeeye.ingest.urls import normalize_url

if TYPE_CHECKING:
    from safeeye.app import SafeEye
    from safeeye.ingest.fetcher import Fetcher, FetchResult

log = logging.getLogger(__name__)


@dataclass
class Candidate:
    """A media file a source found: where it was seen and how to get its bytes.

    ``location`` names the sighting (a URL, or a t.me link / export path for Telegram);
    the bytes come from ``url`` (fetched safely) or from the local file ``path``.
    """

    location: str
    url: str | None = None
    path: Path | None = None
    page_url: str | None = None
    page_id: int | None = None
    how: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None  # a local file's size and mtime, to skip unchanged files
    prefetched: FetchResult | None = None  # the body, when finding it already fetched it


@dataclass
class VisitContext:
    """What a source kind may use during a visit; counts what it did."""

    app: SafeEye
    fetcher: Fetcher
    source_id: int
    pages: int = 0
    page_failures: list[str] = field(default_factory=list)

    def record_page(self, result: FetchResult) -> int:
        """Keep a fetched page as evidence: its HTML sealed in the blob store, its HTTP facts."""
        app = self.app
        body = result.read_bytes()
        sha256 = result.sha256 or hashlib.sha256(body).hexdigest()
        url_key = hashlib.sha256(result.url.encode()).hexdigest()
        with app.db.session() as session:
            latest = session.execute(
                select(Page)
                .where(Page.source_id == self.source_id, Page.url_key == url_key)
                .order_by(Page.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            if latest is not None and latest.sha256 == sha256:
                latest.last_seen_at = result.fetched_at or utcnow()
                self.pages += 1
                return latest.id
        address = app.blobs.put_bytes(body, app.keys.media, "page")
        with app.db.session() as session:
            page = Page(
                url_key=url_key,
                source_id=self.source_id,
                url=result.url,
                final_url=result.final_url,
                fetched_at=result.fetched_at or utcnow(),
                http_status=result.status,
                http_headers=result.headers,
                server_ip=result.server_ip,
                sha256=sha256,
                blob_address=address,
            )
            session.add(page)
            session.flush()
            self.pages += 1
            return page.id

    def fetch_page(
        self, url: str, *, obey_robots: bool = True, max_bytes: int | None = None
    ) -> tuple[FetchResult, bytes, int | None, str | None]:
        """Fetch a page, conditionally when it was kept before (its ETag / Last-Modified):
        an unchanged page is read back from the evidence store instead of downloaded again.

        Returns the fetch result, the body, the kept page's id (None for media bodies, which
        are not kept as pages) and the body's declared content type. Raises ``FetchError``.
        """
        latest = self._latest_page(url)
        headers = (latest.http_headers or {}) if latest is not None else {}
        result = self.fetcher.fetch(
            url,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            obey_robots=obey_robots,
            max_bytes=max_bytes,
        )
        if result.not_modified and latest is not None and latest.blob_address:
            body = self.app.blobs.get_bytes(latest.blob_address, self.app.keys.media)
            with self.app.db.session() as session:
                page = session.get(Page, latest.id)
                if page is not None:
                    page.last_seen_at = result.fetched_at or utcnow()
            self.pages += 1
            return result, body, latest.id, headers.get("content-type")
        sniffed = result.sniffed.kind if result.sniffed else "other"
        if sniffed in ("image", "video"):
            return result, b"", None, result.content_type
        return result, result.read_bytes(), self.record_page(result), result.content_type

    def _latest_page(self, url: str) -> Page | None:
        url_key = hashlib.sha256(url.encode()).hexdigest()
        with self.app.db.session() as session:
            page = session.execute(
                select(Page)
                .where(Page.source_id == self.source_id, Page.url_key == url_key)
                .order_by(Page.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            if page is not None:
                session.expunge(page)
            return page

    def page_failed(self, url: str, error: BaseException | str) -> None:
        """One page (or file, or link) failed: counted and reported, and the visit goes on."""
        text = error_text(error, "one page") if isinstance(error, BaseException) else error
        self.page_failures.append(f"{url[:300]}: {text}")

    def source(self) -> Source:
        with self.app.db.session() as session:
            return session.execute(select(Source).where(Source.id == self.source_id)).scalar_one()


def http_url(text: str) -> str:
    """``text`` as a normalised http(s) URL; ValueError when it is not one."""
    normal = normalize_url(text)
    if normal is None:
        raise ValueError("not a usable http(s) URL")
    return normal


#: A config field holding a URL: checked and stored normalised.
WebUrl = Annotated[str, AfterValidator(http_url)]


class SourceConfig(BaseModel):
    """The settings of one source kind (``Source.config``): each kind declares its fields,
    defaults and bounds in a subclass next to its ``SourceKind``."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FetchConfig(SourceConfig):
    """The settings of a kind that fetches URLs."""

    obey_robots: bool = True  # False only with a legal basis for ignoring robots.txt


C = TypeVar("C", bound=SourceConfig)


class SourceKind(ABC, Generic[C]):
    """One kind of source. ``discover`` yields the media it finds now; fetching, scanning and
    de-duplication are the monitor's job, the same for every kind."""

    name: ClassVar[str]
    Config: type[C]

    @abstractmethod
    def discover(self, ctx: VisitContext, source: Source) -> Iterator[Candidate]:
        """Every media file the source shows now (repeats are fine: the monitor skips them)."""

    def locator(self, text: str) -> str:
        """The stored form of what a person named as this source (``ValidationError`` or
        ``NotFoundError`` when it cannot be one)."""
        return text

    def validate(self, config: Mapping[str, Any] | None) -> C:
        """``config`` as this kind's typed config; a bad or unknown setting is a
        ``ValidationError`` that names it."""
        try:
            return self.Config.model_validate(dict(config or {}))
        except pydantic.ValidationError as exc:
            raise ValidationError(
                f"{self.name} source: {_problems(exc)}", code="bad_config"
            ) from None

    def config(self, source: Source) -> C:
        """The source's typed config; settings a stored row lacks take their defaults, and
        ones no longer known are ignored."""
        known = self.Config.model_fields
        return self.validate({k: v for k, v in (source.config or {}).items() if k in known})

    def describe(self, source: Source) -> str:
        """One line for ``source list``."""
        return source.locator


def _problems(exc: pydantic.ValidationError) -> str:
    """What is wrong with a config, naming each field and never quoting the value given."""
    out = []
    for problem in exc.errors(include_url=False, include_input=False, include_context=False)[:5]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in problem["loc"])
        where = where.replace(".[key]", " (key)").lstrip(".") or "config"
        if problem["type"] == "extra_forbidden":
            out.append(f"{where}: not a setting of this kind of source")
        else:
            out.append(f"{where}: {problem['msg'].removeprefix('Value error, ')}")
    return "; ".join(out)
