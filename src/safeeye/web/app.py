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

from safeeye.web import errors
from safeeye.web.auth import AccountsGateway
from safeeye.web.csrf import verify_csrf
from safeeye.web.i18n import PACKAGE
from safeeye.web.routes import home, session
from safeeye.web.security import ErrorShield, SecurityHeaders

if TYPE_CHECKING:
    from safeeye.app import SafeEye

#: The largest request body (a form, a JSON request) outside the paths that take uploads.
MAX_BODY_BYTES = 1024 * 1024


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
        openapi_url="/api/v1/openapi.json",
        dependencies=[Depends(verify_csrf)],
    )
    app.state.safe = safe
    app.state.accounts = accounts or AccountsGateway(safe)
    errors.install(app)
    app.mount("/static", StaticFiles(packages=[(PACKAGE, "static")]), name="static")
    app.include_router(session.router)
    app.include_router(home.router)
    app.include_router(home.api)
    # The last added is the outermost: headers go on every answer, the shield's 500 too.
    app.add_middleware(ErrorShield, max_body_bytes=max_body_bytes, larger_bodies=larger_bodies)
    app.add_middleware(SecurityHeaders)
    return app
