"""``create_app(safe)``: the FastAPI application of the workbench (pages and /api/v1).

Building it starts nothing: no thread, no connection, no background work (``safeeye serve``
runs those beside it). Every route runs behind the same guards: the security headers, the
CSRF check, the body size limits and the error handlers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.formparsers import MultiPartParser

from safeeye.web import errors
from safeeye.web.auth import AccountsGateway
from safeeye.web.csrf import verify_csrf
from safeeye.web.i18n import PACKAGE
from safeeye.web.routes import (
    account,
    audit,
    cases,
    dashboard,
    home,
    notices,
    public,
    recipients,
    review,
    session,
    sources,
    users,
)
from safeeye.web.security import ErrorShield, SecurityHeaders

if TYPE_CHECKING:
    from safeeye.app import SafeEye

#: The largest request body (a form, a JSON request) outside the paths that take uploads.
MAX_BODY_BYTES = 1024 * 1024
#: The API's description (OpenAPI 3): the JSON API only, the pages are left out of it; also
#: served as /api/v1/openapi.json beside the API.
OPENAPI_URL = "/openapi.json"
#: Path prefix -> body limit for the routes that take uploads (face photos, known media).
UPLOAD_BODIES = {
    "/cases/": 512 * 1024 * 1024,
    "/api/v1/cases/": 512 * 1024 * 1024,
    "/sos": 64 * 1024 * 1024,  # up to 5 photos of 10 MB and the form
}
#: An uploaded file stays in memory up to this size (face photos, an SOS report's photos); a
#: larger one (a known video) spills to a temporary file, which ``safeeye serve`` puts in the
#: process's private folder under the data dir, never the shared system temp dir.
UPLOAD_IN_MEMORY_BYTES = 64 * 1024 * 1024
#: The routers, one pair (pages, API) per resource, in the order they are matched.
RESOURCES = (
    session,
    home,
    dashboard,
    cases,
    sources,
    review,
    notices,
    recipients,
    audit,
    account,
    users,
    public,
)


def create_app(
    safe: SafeEye,
    *,
    accounts: AccountsGateway | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    larger_bodies: Mapping[str, int] | None = None,
) -> FastAPI:
    """The workbench for ``safe`` (already set up with ``safe.init()``). ``accounts``: how
    the web reaches the accounts service (the real one unless a test passes another);
    ``larger_bodies``: path prefix -> body limit, for the routes that take uploads."""
    app = FastAPI(
        title="safeeye",
        # Swagger UI and ReDoc load their scripts from a CDN and inline them: not here.
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_URL,
        dependencies=[Depends(verify_csrf)],
    )
    MultiPartParser.spool_max_size = UPLOAD_IN_MEMORY_BYTES
    app.state.safe = safe
    app.state.accounts = accounts or AccountsGateway(safe)
    errors.install(app)
    app.mount("/static", StaticFiles(packages=[(PACKAGE, "static")]), name="static")
    for resource in RESOURCES:
        app.include_router(resource.router, include_in_schema=False)
        if hasattr(resource, "api"):
            app.include_router(resource.api)
    app.add_api_route(
        "/api/v1/openapi.json", lambda: app.openapi(), include_in_schema=False, tags=["meta"]
    )
    # The last added is the outermost: headers go on every answer, the shield's 500 too.
    app.add_middleware(
        ErrorShield,
        max_body_bytes=max_body_bytes,
        larger_bodies=UPLOAD_BODIES if larger_bodies is None else larger_bodies,
    )
    app.add_middleware(SecurityHeaders)
    return app
