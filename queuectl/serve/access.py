"""Who may use the server: every request carries the token (in `?token=`, an `Authorization:
Bearer` header, or the cookie set after the first tokened page request), compared in constant
time. The token is never logged and never put in a page."""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
import socket

from aiohttp import web

from ..errors import InvalidInput

TOKEN_ENV = "QUEUECTL_SERVE_TOKEN"
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9._~-]{16,256}")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def check_token(token: str) -> str:
    """An operator's token, if it is acceptable."""
    if not _TOKEN_SHAPE.fullmatch(token):
        raise InvalidInput(f"{TOKEN_ENV} must be 16 to 256 characters from A-Z a-z 0-9 . _ ~ - "
                           "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return token


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback address (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInput(f"--host {host!r}: cannot resolve it ({exc})") from None
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback
                               for i in infos)


def _same(candidate: str, token: str) -> bool:
    return hmac.compare_digest(candidate.encode("utf-8", "replace"), token.encode("utf-8"))


class Gate:
    """The token check in front of every route."""

    def __init__(self, token: str, cookie: str, secure: bool) -> None:
        self._token = token
        self.cookie = cookie  # its name: one per port, so two servers on a host do not clash
        self.secure = secure

    def __repr__(self) -> str:  # never show the token, whatever prints this object
        return f"Gate(cookie={self.cookie!r})"

    def allows(self, request: web.Request) -> tuple[bool, bool]:
        """(whether the request carries the token, whether it came in the URL)."""
        header = request.headers.get("Authorization", "")
        bearer = header[7:].strip() if header[:7].lower() == "bearer " else None
        in_url = request.query.get("token")
        found = [c for c in (in_url, bearer, request.cookies.get(self.cookie)) if c is not None]
        ok = False
        for candidate in found:  # each compared in full: no early exit on a partial match
            ok = _same(candidate, self._token) or ok
        return ok, in_url is not None and _same(in_url, self._token)

    def remember(self, response: web.StreamResponse) -> None:
        response.set_cookie(self.cookie, self._token, httponly=True, samesite="Strict",
                            secure=self.secure, path="/")

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        ok, in_url = self.allows(request)
        if not ok:
            raise web.HTTPUnauthorized(
                text="error: this queuectl server needs its token: open the URL that "
                     "`queuectl serve` printed, or send Authorization: Bearer TOKEN\n",
                headers={"WWW-Authenticate": 'Bearer realm="queuectl"'})
        if in_url and request.method == "GET" and request.path == "/":
            # The page: keep the token out of the address bar, history and later requests.
            rest = request.rel_url.query.copy()
            del rest["token"]
            response = web.HTTPSeeOther(location=str(request.rel_url.with_query(rest)))
            self.remember(response)
            raise response
        return await handler(request)
