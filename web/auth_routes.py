"""/auth/session: where the browser trades a one-time login ticket for the HttpOnly session cookie, and where
logout clears it. docs/security.md, "Sessions and cookies".

The page that logs a user in (ui.auth) renders a tiny form that the browser posts here at once: ``ticket`` and
``next`` to log in, ``logout=1`` to log out. The answer is always a 303 redirect (or a short refusal), never a
page that could be framed or cached:

- the request must come from this server's own pages (Origin, or without it Referer, equal to the request's
  own scheme and Host): otherwise 403 and nothing is set, so another site cannot log a browser into an account
  of its choosing (login CSRF) or log it out;
- a good ticket (exact.sessions.redeem_ticket) sets ``exact_session`` HttpOnly, SameSite=Lax, Path=/, Secure on
  https, and redirects to ``next`` (a path on this site; anything else becomes "/");
- a bad, used or expired ticket sets nothing and redirects to the login page;
- GET never redeems anything (an <img> on any site can send a GET): it redirects to "/".
"""

from __future__ import annotations

import html
import logging
from urllib.parse import parse_qs, urlsplit

import anyio.from_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from exact import sessions
from exact.validation import safe_next
from web import resources

log = logging.getLogger(__name__)

LOGIN_PATH = "/login"
LOGIN_FAILED_PATH = "/login?handover=failed"  # the login page explains that this attempt has to be repeated
_MAX_BODY_BYTES = 8192  # a ticket and a path (at most 2,048 characters, percent-encoded)
_NO_STORE = {"Cache-Control": "no-store"}


def session_exchange(request: Request) -> Response:
    # A plain function: Starlette runs it in its thread pool, so the database work does not block the event loop.
    if request.method != "POST":
        return _redirect("/")
    if not _from_our_own_pages(request):
        log.warning(
            "refused /auth/session from origin %r", request.headers.get("origin") or request.headers.get("referer")
        )
        return _refusal(403, "This request did not come from Exact's own pages, so nothing was changed.")
    form = anyio.from_thread.run(_read_form, request)
    if form is None:
        return _refusal(400, "This request was not understood.")
    secure = request.url.scheme == "https"
    if form.get("logout") == "1":
        return _log_out(request, secure=secure)
    settings = resources.settings()
    cookie = sessions.redeem_ticket(
        resources.database(), form.get("ticket"), secret_key=resources.secret_key(), days=settings.session_days
    )
    if cookie is None:
        return _redirect(LOGIN_FAILED_PATH)
    response = _redirect(safe_next(form.get("next")))
    response.set_cookie(
        sessions.COOKIE_NAME,
        cookie,
        max_age=settings.session_days * 86400,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
    return response


def _log_out(request: Request, *, secure: bool) -> Response:
    # The page revoked its session already; revoke the one this browser's cookie names too (they are the same
    # unless the tab and the cookie disagree), then clear the cookie.
    session_id = sessions.read_session_id(
        request.cookies.get(sessions.COOKIE_NAME),
        secret_key=resources.secret_key(),
        days=resources.settings().session_days,
    )
    if session_id is not None:
        sessions.end_session(resources.database(), session_id)
    response = _redirect("/")
    response.delete_cookie(sessions.COOKIE_NAME, path="/", secure=secure, httponly=True, samesite="lax")
    return response


def _from_our_own_pages(request: Request) -> bool:
    host = request.headers.get("host")
    if not host:
        return False
    expected = f"{request.url.scheme}://{host}".lower()
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.strip().lower() == expected  # "null" (sandboxed frames, some redirects) never matches
    referer = request.headers.get("referer")
    if not referer:
        return False
    parts = urlsplit(referer.strip())
    return f"{parts.scheme}://{parts.netloc}".lower() == expected


async def _read_form(request: Request) -> dict[str, str] | None:
    """The urlencoded form fields (first value of each), or None for another content type or a body too long."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY_BYTES:
            return None
    try:
        fields = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=False, max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return None
    return {name: values[0] for name, values in fields.items()}


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=_NO_STORE)


def _refusal(status: int, message: str) -> HTMLResponse:
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Exact</title></head><body>"
        f"<p>{html.escape(message)}</p><p><a href='/'>Back to Exact</a></p></body></html>"
    )
    return HTMLResponse(page, status_code=status, headers=_NO_STORE)
