"""Screenshots of a page by headless Chromium whose every request goes through the safe fetcher.

Chromium never reaches the network itself. Every request the page makes (its document, scripts,
styles, images, frames, popups) is intercepted and answered from ``Fetcher.fetch``, so the SSRF
guard, the pinned addresses and the limits apply to each hop; a request the fetcher refuses is
aborted. What interception does not answer is blocked: other methods than GET, other schemes
than http(s), websockets, service workers, downloads, anything past the time, request or byte
budget. Chromium's own proxy is a closed local port, so a request that slipped past all of
that would go nowhere. The picture stays in memory and is blurred (``blur_png``) before anyone
stores it.
"""

from __future__ import annotations

import asyncio
import io
import socket
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from PIL import Image

from safeeye.errors import FetchError, SafeEyeError
from safeeye.ingest.fetcher import FetchStatusError
from safeeye.media.blur import blur_radius, blurred

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page, Request, Route, WebSocketRoute

    from safeeye.ingest.fetcher import Fetcher

#: Debian's chromium (Playwright's own browser download is never used).
CHROMIUM = Path("/usr/bin/chromium")
#: Chromium without its background services, sync, GPU or DNS prefetching (tests run as root,
#: hence no sandbox); WebRTC may not send UDP around the (closed) proxy.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--dns-prefetch-disable",
    "--no-first-run",
    "--no-default-browser-check",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
)
#: Headers about the bytes on the wire: the fetcher hands over the decoded body.
_WIRE_HEADERS = frozenset(
    {"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"}
)


class ScreenshotError(SafeEyeError):
    """No screenshot could be taken: ``no_chromium``, ``timeout``, ``document`` (the page
    itself was refused or failed) or ``browser``."""

    code = "screenshot"


@dataclass(frozen=True)
class ScreenshotPolicy:
    """How a screenshot is taken (times in seconds, sizes in bytes)."""

    executable: Path = CHROMIUM
    #: Wall-clock bound on the whole screenshot: start, page load, requests and the capture.
    budget: float = 30.0
    width: int = 1280
    height: int = 800
    #: How long to wait, after the load event, for the page's network to go quiet.
    settle: float = 3.0
    max_resource_bytes: int = 25 * 1024**2
    max_total_bytes: int = 100 * 1024**2
    max_requests: int = 300
    #: Requests fetched at once (the fetcher's per-host limits apply as well).
    concurrency: int = 6
    #: A Gaussian blur radius of the picture's longest side divided by this (at least 16 px).
    blur_divisor: float = 40.0


@dataclass(frozen=True)
class Document:
    """The page's document as kept: served to the browser instead of being fetched again, so
    the screenshot shows the HTML the evidence holds."""

    body: bytes
    headers: dict[str, str]


@dataclass
class RequestTally:
    """What became of the page's requests."""

    fetched: int = 0  # answered through the fetcher (an HTTP error status included)
    refused: Counter[str] = field(default_factory=Counter)  # by the fetcher, per error code
    blocked: int = 0  # never fetched: method, scheme, websocket, budget

    def as_json(self) -> dict[str, Any]:
        return {"fetched": self.fetched, "refused": dict(self.refused), "blocked": self.blocked}


@dataclass(frozen=True)
class Render:
    """A screenshot as Chromium drew it: ``png`` is NOT blurred and lives in memory only."""

    png: bytes
    url: str
    taken_at: datetime
    width: int
    height: int
    complete: bool  # False: the page had not finished loading within the budget
    requests: dict[str, Any]


@dataclass(frozen=True)
class BlurredShot:
    """A screenshot blurred for storing."""

    png: bytes
    width: int
    height: int
    radius: float


def chromium_missing(policy: ScreenshotPolicy) -> str | None:
    """Why no screenshot can be taken on this machine (None when Chromium is there)."""
    if not policy.executable.exists():
        return f"no Chromium at {policy.executable} (scripts/setup installs Debian's chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def render_page(
    url: str,
    fetcher: Fetcher,
    *,
    document: Document | None = None,
    policy: ScreenshotPolicy | None = None,
    temp_dir: str | None = None,
) -> Render:
    """Load ``url`` in a fresh headless Chromium, every request answered through ``fetcher``,
    and capture the viewport; ``ScreenshotError`` when that cannot be done."""
    policy = policy or ScreenshotPolicy()
    reason = chromium_missing(policy)
    if reason:
        raise ScreenshotError(reason, code="no_chromium")
    renderer = _Renderer(url, fetcher, document, policy, temp_dir)
    # Its own thread and event loop: the caller may be running one (a web request).
    with ThreadPoolExecutor(1, thread_name_prefix="safeeye-chromium") as thread:
        return thread.submit(asyncio.run, renderer.run()).result()


def blur_png(png: bytes, policy: ScreenshotPolicy | None = None) -> BlurredShot:
    """The picture under a Gaussian blur strong enough that faces and bodies are not
    recognisable (a radius of a fortieth of its longest side), as PNG."""
    policy = policy or ScreenshotPolicy()
    with Image.open(io.BytesIO(png)) as image:
        picture = image.convert("RGB")
    radius = blur_radius(picture.size, policy.blur_divisor)
    out = io.BytesIO()
    blurred(picture, policy.blur_divisor).save(out, "PNG", optimize=True)
    return BlurredShot(out.getvalue(), picture.width, picture.height, radius)


@dataclass(frozen=True)
class _Body:
    final_url: str
    status: int
    headers: dict[str, str]
    body: bytes


class _Renderer:
    """One screenshot: the browser, the request interception and the budgets."""

    def __init__(
        self,
        url: str,
        fetcher: Fetcher,
        document: Document | None,
        policy: ScreenshotPolicy,
        temp_dir: str | None,
    ) -> None:
        self.fetcher = fetcher
        self.document = document
        self.policy = policy
        self.temp_dir = temp_dir
        self.tally = RequestTally()
        self._bytes = 0
        self._requests = 0
        self.target = url  # the URL the page is loaded at (its final one, once redirected)
        self._moved: _Body | None = None  # the page, fetched through its redirects
        self._document_error: FetchError | None = None
        self._pool = ThreadPoolExecutor(policy.concurrency, thread_name_prefix="safeeye-shot")
        self._deadline = 0.0

    async def run(self) -> Render:
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self.policy.budget
        try:
            # The budget's backstop; the steps below keep to it by their own timeouts.
            return await asyncio.wait_for(self._render(), self.policy.budget + 10.0)
        except TimeoutError as exc:
            raise ScreenshotError(
                f"the page did not render within {self.policy.budget:g} s", code="timeout"
            ) from exc
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _left(self) -> float:
        return self._deadline - asyncio.get_running_loop().time()

    async def _render(self) -> Render:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import async_playwright

        policy = self.policy
        with (
            tempfile.TemporaryDirectory(prefix="safeeye-chromium-", dir=self.temp_dir) as profile,
            _closed_port() as dead_end,
        ):
            try:
                async with async_playwright() as playwright:
                    context = await playwright.chromium.launch_persistent_context(
                        profile,
                        executable_path=str(policy.executable),
                        headless=True,
                        args=list(CHROMIUM_ARGS),
                        proxy={"server": f"http://127.0.0.1:{dead_end}", "bypass": "<-loopback>"},
                        service_workers="block",
                        accept_downloads=False,
                        viewport={"width": policy.width, "height": policy.height},
                    )
                    try:
                        return await self._capture(context)
                    finally:
                        await context.close()
            except PlaywrightError as exc:
                raise ScreenshotError(
                    f"Chromium failed ({type(exc).__name__})", code="browser"
                ) from exc

    async def _capture(self, context: BrowserContext) -> Render:
        await context.route("**/*", self._answer)
        await context.route_web_socket("**/*", self._refuse_socket)
        page = context.pages[0] if context.pages else await context.new_page()
        complete = await self._load(page)
        reserve = min(5.0, self.policy.budget / 4)
        png = await page.screenshot(
            type="png", timeout=_ms(max(self._left(), 0) + reserve), animations="disabled"
        )
        return Render(
            png=png,
            url=self.target,
            taken_at=datetime.now(UTC),
            width=self.policy.width,
            height=self.policy.height,
            complete=complete,
            requests=self.tally.as_json(),
        )

    async def _load(self, page: Page) -> bool:
        """Load the page; False when the budget ran out before it had loaded."""
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        if not await self._goto(page):
            return False
        moved, self._moved = self._moved, None
        if moved is not None:
            # A redirect answered by interception is not routed again by Chromium: the page
            # is loaded again at its final URL, from what the fetcher already has.
            self.target, self.document = moved.final_url, Document(moved.body, moved.headers)
            if not await self._goto(page):
                return False
        with suppress(PlaywrightTimeout):  # a page that never goes quiet is drawn as it is
            await page.wait_for_load_state(
                "networkidle", timeout=_ms(min(self.policy.settle, self._left()))
            )
        return True

    async def _goto(self, page: Page) -> bool:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        try:
            await page.goto(self.target, wait_until="load", timeout=_ms(self._left()))
        except PlaywrightTimeout:
            return False
        except PlaywrightError as exc:
            raise self._not_loaded() from exc
        return True

    def _not_loaded(self) -> ScreenshotError:
        error = self._document_error
        if error is not None:
            return ScreenshotError(f"the page was refused: {error.as_text()}", code="document")
        return ScreenshotError("the page did not load", code="document")

    # -- interception ------------------------------------------------------------------------

    async def _answer(self, route: Route) -> None:
        request = route.request
        url = request.url
        if not self._may_fetch(request.method, url):
            self.tally.blocked += 1
            await _abort(route)
            return
        self._requests += 1
        page_itself = url == self.target and _top_navigation(request)
        if self.document is not None and page_itself:
            document, self.document = self.document, None  # once: a reload is fetched
            self.tally.fetched += 1
            await _fulfil(route, 200, document.headers, document.body)
            return
        try:
            answer = await asyncio.get_running_loop().run_in_executor(self._pool, self._fetch, url)
        except FetchStatusError as exc:
            self.tally.fetched += 1
            await _fulfil(route, exc.status, {}, b"")
            return
        except FetchError as exc:
            self.tally.refused[exc.code] += 1
            if page_itself:
                self._document_error = exc
            await _abort(route)
            return
        except Exception:  # a broken fetch of one request must not end the screenshot
            self.tally.refused["internal"] += 1
            await _abort(route)
            return
        self._bytes += len(answer.body)
        if page_itself and answer.final_url != url:
            self._moved = answer  # redirected, each hop guarded: ``_load`` goes there
            await _fulfil(route, 200, {"content-type": "text/html"}, b"")
            return
        # A moved script or picture is answered at the URL the page asked for.
        self.tally.fetched += 1
        await _fulfil(route, answer.status, answer.headers, answer.body)

    def _may_fetch(self, method: str, url: str) -> bool:
        return (
            method == "GET"
            and urlsplit(url).scheme in ("http", "https")
            and self._requests < self.policy.max_requests
            and self._bytes < self.policy.max_total_bytes
            and self._left() > 0
        )

    def _fetch(self, url: str) -> _Body:
        """One request through the fetcher (in a worker thread); the temporary file goes."""
        limit = min(self.policy.max_resource_bytes, self.policy.max_total_bytes - self._bytes)
        with self.fetcher.fetch(url, max_bytes=max(limit, 1)) as result:
            return _Body(result.final_url, result.status, result.headers, result.read_bytes())

    async def _refuse_socket(self, socket_route: WebSocketRoute) -> None:
        self.tally.blocked += 1
        await socket_route.close(code=1008, reason="blocked")


def _top_navigation(request: Request) -> bool:
    """Whether ``request`` loads the document of a page (not of a frame inside one)."""
    try:
        return request.is_navigation_request() and request.frame.parent_frame is None
    except Exception:  # a request without a frame (a worker's)
        return False


async def _fulfil(route: Route, status: int, headers: dict[str, str], body: bytes) -> None:
    from playwright.async_api import Error as PlaywrightError

    kept = {k: v for k, v in headers.items() if k.lower() not in _WIRE_HEADERS}
    with suppress(PlaywrightError):  # the page went away meanwhile
        await route.fulfill(status=status, headers=kept, body=body)


async def _abort(route: Route) -> None:
    from playwright.async_api import Error as PlaywrightError

    with suppress(PlaywrightError):
        await route.abort("blockedbyclient")


def _ms(seconds: float) -> float:
    return max(seconds, 0.001) * 1000


@contextmanager
def _closed_port() -> Iterator[int]:
    """A local port bound but not listening: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
