"""Request-size limits applied before a body is read, and a last-resort catch for errors the handlers missed.

Both are plain ASGI middleware on the API app: a request whose ``Content-Length`` is over its limit is answered
413 without reading a byte of the body; a chunked body (no length) is counted as it arrives and stopped at the
limit. Uploads may be EXACT_MAX_UPLOAD_MB plus room for the form's other fields; every other body 64 KB.
"""

from __future__ import annotations

import json
import logging
import uuid

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.problems import PROBLEM_JSON, ApiProblem

log = logging.getLogger("exact.api")

SMALL_BODY_BYTES = 64 * 1024
FORM_OVERHEAD_BYTES = 1024 * 1024  # the multipart boundaries and the text fields around the file


def upload_limit_bytes() -> int:
    from web.resources import settings

    return settings().max_upload_bytes + FORM_OVERHEAD_BYTES


def is_upload(scope: Scope) -> bool:
    return scope["method"] == "POST" and scope["path"].rstrip("/").endswith("/submissions")


async def _send_problem(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    titles = {400: "Bad request", 401: "Not authenticated", 403: "Not allowed", 413: "Request too large",
              429: "Too many requests", 500: "Server error"}  # fmt: skip
    body = json.dumps({"type": "about:blank", "title": titles.get(status, "Error"), "status": status,
                       "detail": detail}).encode()  # fmt: skip
    raw_headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = upload_limit_bytes() if is_upload(scope) else SMALL_BODY_BYTES
        what = "an upload" if is_upload(scope) else "this request"
        too_large = f"The body of {what} may be at most {limit / (1024 * 1024):.2f} MB."
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _send_problem(send, 400, "The Content-Length header is not a number.")
                return
            if length > limit:
                await _send_problem(send, 413, too_large, {"Connection": "close"})
                return
        received = 0
        answered = False  # the 413 went out: whatever the app sends after it is dropped
        started = False

        async def counting() -> Message:
            nonlocal received, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    answered = True
                    if not started:
                        await _send_problem(send, 413, too_large, {"Connection": "close"})
                    # The app sees the client gone: its body parser stops and nothing it stored is kept.
                    return {"type": "http.disconnect"}
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if answered:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting, sending)
        except Exception:
            if not answered:
                raise  # a real error: CatchAll answers it
            # e.g. Starlette's ClientDisconnect from the body parser after the 413: expected, nothing to report


class UploadGate:
    """An upload's token is checked before its body is read: a request without a live token with the ``submit``
    scope is answered at once, so nobody without one makes the server spool megabytes to disk. (The handler
    checks the token again, with the rate limit, as every handler does.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_upload(scope):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or ()).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        client = scope.get("client")
        host = client[0] if client else None
        if scheme.lower() != "bearer" or not token.strip():
            refusal = _visitor_refusal(host)
        else:
            refusal = await anyio.to_thread.run_sync(_token_refusal, host, token.strip())
        if refusal is not None:
            status, detail, headers = refusal
            if status == 401:
                headers = {**headers, "WWW-Authenticate": 'Bearer realm="exact"'}
            # The body stays unread: the connection is closed after the answer (a client still sending may see a
            # reset rather than the answer; reading megabytes only to refuse them is what this gate avoids).
            await _send_problem(send, status, detail, {**headers, "Connection": "close"})
            return
        await self.app(scope, receive, send)


def _visitor_refusal(host: str | None) -> tuple[int, str, dict[str, str]]:
    from web.callers import address_key, spend

    try:
        spend(address_key(host))  # refused uploads without a token count against the address, like any request
    except ApiProblem as exc:
        return exc.status, exc.detail, exc.headers
    return 401, "Uploads need an API token with the 'submit' scope (Authorization: Bearer …).", {}


def _token_refusal(host: str | None, token: str) -> tuple[int, str, dict[str, str]] | None:
    from exact.errors import InvalidToken
    from web.callers import address_key, authenticate_bearer

    try:
        who = authenticate_bearer(address_key(host), token)
    except InvalidToken as exc:
        return 401, str(exc), {}
    except ApiProblem as exc:
        return exc.status, exc.detail, exc.headers
    if "submit" not in who.scopes:
        return 403, "This token lacks the 'submit' scope; create one with it on your profile page.", {}
    return None


class CatchAll:
    """Anything a handler let through becomes a 500 problem with a reference (logged), never a traceback, and
    never reaches Streamlit's server (which would print it and close the connection)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            reference = uuid.uuid4().hex[:8]
            log.error("unexpected error in %s %s (reference %s)", scope["method"], scope["path"], reference,
                      exc_info=exc)  # fmt: skip
            if not started:
                await _send_problem(
                    send, 500, f"Sorry, something went wrong on our side. If it keeps happening, quote reference "
                    f"{reference}.",
                )  # fmt: skip
