"""Dashboard sign-in with the admin token.

A person signs in by typing the admin token into a form. On success the browser gets a cookie
that is ``HttpOnly`` and ``SameSite=Strict`` and holds an HMAC of the token under a secret drawn
at random when the process starts, never the token itself. So the cookie is useless to anyone
who reads it off another process, stops working when the gateway restarts or the token changes,
and signing out simply drops it. Every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse

COOKIE = "spendgate_session"
HOME = "/dashboard"
MAX_TOKEN_CHARS = 1024


class Session:
    """Who is signed in to the dashboard: built once per app from the configured token."""

    def __init__(self, token: str | None, *, secret: bytes | None = None) -> None:
        self._token = token.encode() if token else None
        self._secret = secret or secrets.token_bytes(32)

    @property
    def enabled(self) -> bool:
        """False when no admin token is configured: the dashboard is then off."""
        return self._token is not None

    def token_matches(self, presented: str) -> bool:
        if self._token is None or not 0 < len(presented) <= MAX_TOKEN_CHARS:
            return False
        return hmac.compare_digest(presented.encode(), self._token)

    def signed_in(self, request: Request) -> bool:
        value = request.cookies.get(COOKIE)
        if self._token is None or value is None:
            return False
        return hmac.compare_digest(value.encode(), self._mark().encode())

    def sign_in(self, request: Request, next_path: str) -> RedirectResponse:
        """Redirect to ``next_path`` (a dashboard path; anything else goes home) with the
        session cookie set."""
        response = RedirectResponse(safe_next(next_path), status_code=303)
        response.set_cookie(
            COOKIE,
            self._mark(),
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    def sign_out(self) -> RedirectResponse:
        response = RedirectResponse(f"{HOME}/signin", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    def _mark(self) -> str:
        assert self._token is not None
        return hmac.new(self._secret, self._token, hashlib.sha256).hexdigest()


def safe_next(path: str) -> str:
    """Only a path inside the dashboard is a redirect target (no open redirects)."""
    ok = (path == HOME or path.startswith(HOME + "/") or path.startswith(HOME + "?")) and (
        "//" not in path and "\\" not in path
    )
    return path if ok else HOME


def signin_url(request: Request) -> str:
    """The sign-in page, remembering where the person wanted to go."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{HOME}/signin?next={quote(safe_next(target), safe='')}"
