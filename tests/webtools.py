"""What the web tests share: accounts with a known password, signing in through the real form,
the CSRF token of a page, and a signed-in test client per role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conftest import act
from safeeye.accounts import create_api_token, create_user
from safeeye.app import SafeEye

PASSWORD = "correct horse battery staple"
TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
#: Inline style or an event handler in a page: the CSP forbids both, so none may be there.
INLINE_CODE = re.compile(r"<style|\sstyle=|\son[a-z]+=")
ROLES = ("admin", "counselor", "reviewer", "auditor")
#: Folders the browser tests wrote screenshots to (the run's summary prints them).
SCREENSHOTS = pytest.StashKey[set[str]]()


def user(safe: SafeEye, username: str, *roles: str, name: str = "", language: str = "en") -> None:
    """An account ``username`` with ``roles`` and ``PASSWORD`` (English pages unless asked)."""
    act(safe, create_user, username, roles, display_name=name, password=PASSWORD, language=language)


def api_token(safe: SafeEye, username: str) -> str:
    """A new API token of ``username`` (an ``Authorization: Bearer`` value)."""
    return act(safe, create_api_token, f"{username} tests", username).token  # type: ignore[no-any-return]


def form_token(page: str) -> str:
    """The CSRF token in a page's forms."""
    found = TOKEN_FIELD.search(page)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD, **extra: str):  # type: ignore[no-untyped-def]
    """Signs in through the sign-in form; returns the form's answer."""
    token = form_token(client.get("/login").text)
    fields = {"username": username, "password": password, "csrf_token": token, **extra}
    return client.post("/login", data=fields)


@contextmanager
def browser(web: FastAPI, username: str | None = None) -> Iterator[TestClient]:
    """A test client, signed in as ``username`` unless None; redirects are not followed."""
    with TestClient(web, follow_redirects=False) as client:
        if username is not None:
            answer = sign_in(client, username)
            assert answer.status_code == 303, answer.text
        yield client


def csrf_of(client: TestClient, page: str = "/account") -> str:
    """The signed-in session's CSRF token, read from one of its pages."""
    return form_token(client.get(page).text)


def operations(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app answers, the included routers' too (FastAPI keeps those
    behind wrappers of its own), HEAD left out; the static mount is not a route."""

    def walk(routes: list[Any]) -> Iterator[tuple[str, str]]:
        for route in routes:
            if hasattr(route, "effective_candidates"):  # an included router
                yield from walk(route.effective_candidates())
                continue
            original = getattr(route, "original_route", route)
            path = getattr(route, "path", None) or getattr(original, "path", None)
            methods = getattr(original, "methods", None)
            if path and methods:
                yield from ((method, path) for method in sorted(methods) if method != "HEAD")

    return sorted(set(walk(list(app.routes))))
