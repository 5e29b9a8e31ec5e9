"""A small typed client for Exact's HTTP API (docs/api.md), and what ``python -m exact submit / leaderboard /
challenges`` print (docs/client.md).

It talks HTTP only: nothing here opens the database. Every error the server answers (``application/problem+json``:
``type, title, status, detail``) or any failure to reach it becomes a ``ClientError`` carrying the status and a
message meant for the user; the token is never part of a message, a log line or ``repr``.
"""

from __future__ import annotations

import email.utils
import os
import re
import stat
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, TypedDict
from urllib.parse import quote, urlsplit

import httpx

from exact.errors import ValidationError

__all__ = [
    "DEFAULT_URL",
    "TOKEN_ENV",
    "URL_ENV",
    "ClientError",
    "Credentials",
    "ExactClient",
    "WaitTimeout",
    "check_attributions_file",
    "format_table",
    "page_text",
    "resolve_token",
    "resolve_url",
    "token_file_path",
]

DEFAULT_URL = "http://127.0.0.1:8501"
TOKEN_ENV = "EXACT_TOKEN"  # noqa: S105 - the name of the variable, not a token
URL_ENV = "EXACT_URL"
API_PREFIX = "/api/v1"
USER_AGENT = "exact-client/1"
DEFAULT_TIMEOUT_S = 30.0
RATE_LIMIT_RETRIES = 2  # a 429 is waited out (Retry-After) this many times, then the command gives up
MAX_RETRY_AFTER_S = 120.0  # a longer Retry-After is not waited for: the command stops and says so
TRANSPORT_RETRIES = 2  # a dropped connection is retried for idempotent requests (GETs, keyed submits)
DONE_STATUSES = ("done", "failed")
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: anything else is no token of ours


# ---------------------------------------------------------------------------------------------------------------
# Shapes of the answers (docs/api.md, "Shapes"). total=False: a newer server may add fields, never a reason to fail.


class ChallengeSummary(TypedDict, total=False):
    challenge_id: str
    title: str
    created_at: str
    participants: int
    submissions: int
    best_score: float | None
    scored_on_server: bool


class Evaluation(TypedDict, total=False):
    n_samples: int
    height: int
    width: int
    shape: list[int]
    file_types: list[str]
    npz_key: str
    primary_metric: str
    shown_metrics: list[str]
    split_sizes: dict[str, int]
    benchmark: dict[str, Any] | None


class ChallengeDetails(ChallengeSummary, total=False):
    description: str
    rules: dict[str, Any]
    files: list[dict[str, Any]]
    evaluation: Evaluation | None


class ChallengePage(TypedDict, total=False):
    items: list[ChallengeSummary]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class LeaderboardPage(TypedDict, total=False):
    challenge_id: str
    board: str
    show_all: bool
    columns: list[Any]
    rows: list[Any]
    total: int
    limit: int
    offset: int
    next_offset: int | None
    baselines: list[dict[str, Any]]


class ScoreResult(TypedDict, total=False):
    score_id: int
    challenge_id: str
    username: str
    score: float
    created_at: str
    rank: int
    best_score: float
    ranked_users: int
    repeated: bool


class SummaryRow(TypedDict, total=False):
    split: str
    metric: str
    mean: float | None
    std: float | None
    scored: int
    not_scorable: int


class Submission(TypedDict, total=False):
    id: int
    challenge_id: str
    method_name: str
    description: str
    url: str
    status: Literal["queued", "running", "done", "failed"]
    error: str | None
    primary_metric: str
    public_value: float | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    progress: dict[str, int] | None
    summary: list[SummaryRow]
    rank: int | None
    repeated: bool


class Me(TypedDict, total=False):
    username: str
    token: dict[str, Any]


# ---------------------------------------------------------------------------------------------------------------
# Errors


class ClientError(Exception):
    """The server refused a request (``status`` = its HTTP status) or could not be reached (``status`` None).

    ``detail`` is meant for the user; the CLI prints ``error: <detail>`` and exits with ``exit_code``: 2 when the
    request was refused (4xx, something the user can fix), 3 when the server could not be reached or failed (5xx).
    """

    def __init__(self, detail: str, *, status: int | None = None, title: str = "", reference: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.title = title
        self.reference = reference

    @property
    def exit_code(self) -> int:
        return 2 if self.status is not None and 400 <= self.status < 500 else 3


class WaitTimeout(ClientError):
    """The submission was not finished within the time the command waits for it (it goes on on the server)."""

    def __init__(self, detail: str, submission: Submission) -> None:
        super().__init__(detail)
        self.submission = submission


# ---------------------------------------------------------------------------------------------------------------
# Where the server and the token come from


@dataclass(frozen=True)
class Credentials:
    """A token and where it was found (``EXACT_TOKEN`` or the file's path); ``repr`` never shows the token."""

    token: str
    source: str
    warning: str | None = None  # e.g. a token file other users may read

    def __repr__(self) -> str:
        return f"Credentials(source={self.source!r}, token=<hidden>)"


def token_file_path(home: Path | None = None) -> Path:
    return (home if home is not None else Path.home()) / ".config" / "exact" / "token"


def resolve_token(env: Mapping[str, str] | None = None, *, home: Path | None = None) -> Credentials | None:
    """The token from ``EXACT_TOKEN``, else from ``~/.config/exact/token`` (whitespace stripped); None if neither
    holds one. A token file that others may read still works, with a warning."""
    env = os.environ if env is None else env
    value = (env.get(TOKEN_ENV) or "").strip()
    if value:
        return Credentials(_checked_token(value, TOKEN_ENV), TOKEN_ENV)
    path = token_file_path(home)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValidationError(f"Cannot read the token file {path}: {exc.strerror or exc}.") from None
    if not stat.S_ISREG(mode):
        raise ValidationError(f"The token file {path} is not a regular file.")
    token = text.strip()
    if not token:
        raise ValidationError(f"The token file {path} is empty: paste your API token into it.")
    warning = None
    if mode & 0o077:
        warning = f"{path} can be read by other users of this machine; restrict it with: chmod 600 {path}"
    return Credentials(_checked_token(token, str(path)), str(path), warning)


def _checked_token(token: str, source: str) -> str:
    if not _TOKEN_CHARS.fullmatch(token):  # never quoted back: it may be a real secret pasted with a typo
        raise ValidationError(
            f"The token in {source} is not a valid API token (one line of printable characters, starting with exact_)."
        )
    return token


def missing_token_message(base_url: str) -> str:
    return (
        "This command needs an API token, and none was found. Create one on the Profile page → API tokens "
        f"({base_url}/profile, log in first), with the 'submit' and 'read' scopes; then set {TOKEN_ENV}=<token> "
        f"or save it in {token_file_path()} (chmod 600)."
    )


def resolve_url(flag: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The server: ``--url``, else ``EXACT_URL``, else the local default; without a trailing slash."""
    env = os.environ if env is None else env
    raw = (flag or "").strip() or (env.get(URL_ENV) or "").strip() or DEFAULT_URL
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        shown = raw if len(raw) <= 80 else raw[:79] + "…"
        raise ValidationError(f"The server address must look like {DEFAULT_URL}, not {shown!r} (--url or {URL_ENV}).")
    return raw.rstrip("/")


# ---------------------------------------------------------------------------------------------------------------
# Local checks before an upload: the server's own (exact.arrays), so a bad file is refused with its message


def check_attributions_file(path: Path, evaluation: Evaluation, *, max_bytes: int) -> None:
    """Refuse what the server would refuse, with the server's message (exact.intake.submit_attributions).

    ``max_bytes`` bounds what is read into memory here; the server's own upload limit is the server's to apply.
    """
    from exact import arrays

    precheck_attributions_file(path, max_bytes=max_bytes)
    shape = _shape_of(evaluation)
    key = (evaluation.get("npz_key") or arrays.ATTRIBUTIONS_KEY) if path.name.lower().endswith(".npz") else None
    data = path.read_bytes()
    raw = arrays.load_array_file(data, name=path.name, max_bytes=max_bytes, key=key)
    del data
    arrays.validate_submitted_attributions(raw, shape)


def precheck_attributions_file(path: Path, *, max_bytes: int) -> None:
    """What can be checked without the challenge: the file exists, is not empty, is .npy/.npz, fits the limit."""
    if not path.is_file():
        raise ValidationError(f"No such file: {path}")
    label = "Attributions"
    size = path.stat().st_size
    if size == 0:
        raise ValidationError(f"{label}: the file is empty.")
    if size > max_bytes:
        raise ValidationError(f"{label}: the file is larger than the {max_bytes / (1024 * 1024):g} MB limit.")
    if not path.name.lower().endswith((".npy", ".npz")):
        raise ValidationError(f"{label}: files of this type are not accepted (.npy, .npz).")


def _shape_of(evaluation: Evaluation) -> tuple[int, int, int]:
    shape = evaluation.get("shape") or [evaluation.get("n_samples"), evaluation.get("height"), evaluation.get("width")]
    if len(shape) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ClientError(f"The server described this challenge's evaluation set oddly (shape {shape!r}).")
    return int(shape[0]), int(shape[1]), int(shape[2])


# ---------------------------------------------------------------------------------------------------------------
# The client


class _CountingFile:
    """A binary file read by httpx chunk by chunk, reporting the bytes read so far (the upload's progress).

    ``fileno`` lets httpx size the multipart body (so it sends a Content-Length and the server can refuse a
    too-large upload before it is sent); ``seek(0)``, which httpx does before each send, restarts the count.
    """

    def __init__(self, file: IO[bytes], total: int, progress: Callable[[int, int], None] | None) -> None:
        self._file = file
        self._total = total
        self._progress = progress
        self._sent = 0

    def fileno(self) -> int:
        return self._file.fileno()

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self._file.seek(offset, whence)
        self._report(position)
        return position

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        if chunk:
            self._report(self._sent + len(chunk))
        return chunk

    def _report(self, sent: int) -> None:
        self._sent = sent
        if self._progress is not None:
            self._progress(min(sent, self._total), self._total)


class ExactClient:
    """Exact's HTTP API v1 at ``base_url`` (e.g. http://127.0.0.1:8501), acting as the token's user.

    Requests without a token are visitors' (public reads). ``notice`` receives one-line messages about waits and
    retries (the CLI prints them to standard error). Use it as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        notice: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.has_token = bool(token)
        self._notice = notice
        self._sleep = sleep
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json, application/problem+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.base_url + API_PREFIX,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"ExactClient({self.base_url!r}, token={'<hidden>' if self.has_token else None})"

    def __enter__(self) -> ExactClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- endpoints ------------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health")

    def me(self) -> Me:
        return self._json("GET", "/me")

    def challenges(self, search: str = "", *, limit: int = 50, offset: int = 0, sort: str = "newest") -> ChallengePage:
        params: dict[str, Any] = {"sort": sort, "limit": limit, "offset": offset}
        if search:
            params["search"] = search
        return self._json("GET", "/challenges", params=params)

    def challenge(self, challenge_id: str) -> ChallengeDetails:
        return self._json("GET", f"/challenges/{_segment(challenge_id)}")

    def allowance(self, challenge_id: str) -> dict[str, Any]:
        return self._json("GET", f"/challenges/{_segment(challenge_id)}/allowance")

    def leaderboard(
        self,
        challenge_id: str,
        *,
        board: str | None = None,
        show_all: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> LeaderboardPage:
        params: dict[str, Any] = {"show_all": _flag(show_all), "limit": limit, "offset": offset}
        if board:  # left out, not empty: the server's default (the final board once revealed, else the public)
            params["board"] = board
        return self._json("GET", f"/challenges/{_segment(challenge_id)}/leaderboard", params=params)

    def leaderboard_csv(
        self, challenge_id: str, *, board: str | None = None, show_all: bool = False
    ) -> Iterator[bytes]:
        """The whole ranking as CSV, chunk by chunk as the server streams it."""
        params: dict[str, Any] = {"show_all": _flag(show_all)}
        if board:
            params["board"] = board
        path = f"/challenges/{_segment(challenge_id)}/leaderboard.csv"
        response = self._send("GET", path, params=params, stream=True, expect=(200,))
        try:
            yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise self._transport_error(exc, "GET", path) from None
        finally:
            response.close()

    def submit_score(self, challenge_id: str, score: float, *, request_key: str | None = None) -> ScoreResult:
        body: dict[str, Any] = {"score": score}
        if request_key:
            body["request_key"] = request_key
        path = f"/challenges/{_segment(challenge_id)}/scores"
        return self._json("POST", path, json=body, idempotent=bool(request_key), expect=(200, 201))

    def upload_attributions(
        self,
        challenge_id: str,
        path: Path | str,
        *,
        method_name: str,
        description: str = "",
        url: str = "",
        request_key: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Submission:
        """Upload an attribution file, streamed from disk; ``progress(sent, total)`` follows the file's bytes."""
        path = Path(path)
        form = {"method_name": method_name, "description": description, "url": url}
        if request_key:
            form["request_key"] = request_key
        total = path.stat().st_size
        endpoint = f"/challenges/{_segment(challenge_id)}/submissions"
        with path.open("rb") as file:
            counted = _CountingFile(file, total, progress)
            return self._json(
                "POST",
                endpoint,
                data=form,
                files=lambda: {"file": (path.name, counted, "application/octet-stream")},
                idempotent=bool(request_key),
                expect=(200, 201, 202),
            )

    def submission(self, submission_id: int) -> Submission:
        return self._json("GET", f"/submissions/{int(submission_id)}")

    def my_submissions(self, challenge_id: str | None = None, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if challenge_id:
            params["challenge_id"] = challenge_id
        return self._json("GET", "/me/submissions", params=params)

    def wait_for_result(
        self,
        submission_id: int,
        *,
        timeout: float = 900.0,
        poll: float = 1.0,
        max_poll: float = 10.0,
        on_update: Callable[[Submission], None] | None = None,
    ) -> Submission:
        """Poll until the submission is done or failed, at most ``timeout`` seconds in all.

        The interval starts at ``poll`` and grows by half each time up to ``max_poll``; it starts again from
        ``poll`` when the status changes. ``on_update`` sees every answer (what is being waited for).
        Raises ``WaitTimeout`` (the submission goes on on the server) when time is up.
        """
        deadline = time.monotonic() + timeout
        delay = poll
        last_status = None
        while True:
            current = self.submission(submission_id)
            if on_update is not None:
                on_update(current)
            status = current.get("status")
            if status in DONE_STATUSES:
                return current
            if status != last_status:
                delay, last_status = poll, status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(
                    f"Submission {submission_id} is still {describe_status(current)} after {timeout:g} s; it goes "
                    f"on on the server: see {self.result_url(submission_id)} later.",
                    current,
                )
            self._sleep(min(delay, remaining))
            delay = min(delay * 1.5, max_poll)

    def result_url(self, submission_id: int) -> str:
        """The result page of a submission in the web app."""
        return f"{self.base_url}/result?submission={int(submission_id)}"

    # --- transport ------------------------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ClientError(
                f"The server answered {method} {API_PREFIX}{path} with something other than JSON: is "
                f"{self.base_url} an Exact server?",
                status=response.status_code,
            ) from None

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: Callable[[], dict[str, Any]] | None = None,
        stream: bool = False,
        idempotent: bool | None = None,
        expect: Sequence[int] = (200,),
    ) -> httpx.Response:
        """One request, with the waits the API asks for (429 + Retry-After, twice at most) and retries of a
        dropped connection when repeating the request is harmless (GETs, submits with a request key)."""
        retry_transport = method == "GET" if idempotent is None else idempotent
        rate_waits = transport_retries = 0
        while True:
            request = self._http.build_request(
                method, path, params=params, json=json, data=data, files=files() if files else None
            )
            try:
                response = self._http.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise self._transport_error(exc, method, path) from None
            except httpx.TransportError as exc:
                if not retry_transport or transport_retries >= TRANSPORT_RETRIES:
                    raise self._transport_error(exc, method, path) from None
                transport_retries += 1
                self._say(f"The connection dropped ({_describe(exc)}); trying again (attempt {transport_retries + 1}).")
                self._sleep(float(transport_retries))
                continue
            if response.status_code in expect:
                return response
            if stream:
                response.read()
            response.close()
            if response.status_code == 429:
                wait = _retry_after(response)
                if rate_waits < RATE_LIMIT_RETRIES and wait <= MAX_RETRY_AFTER_S:
                    rate_waits += 1
                    self._say(f"The server asks to slow down; waiting {wait:g} s before trying again.")
                    self._sleep(wait)
                    continue
            raise self._error(response)

    def _say(self, message: str) -> None:
        if self._notice is not None:
            self._notice(message)

    def _error(self, response: httpx.Response) -> ClientError:
        request = response.request
        where = f"{request.method} {request.url.path}"
        status = response.status_code
        detail = title = reference = ""
        if "json" in response.headers.get("content-type", ""):
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                detail = _detail_text(body.get("detail"))
                title = str(body.get("title") or "")
                reference = str(body.get("reference") or "")
        if 300 <= status < 400:
            location = response.headers.get("location", "")
            detail = f"The server redirects {where} to {location or 'elsewhere'}: use that address as {URL_ENV}."
        if not detail:
            detail = title or f"The server answered {status} {response.reason_phrase} to {where}."
            if status == 404 and not title:
                detail += f" Is {self.base_url} an Exact server with the HTTP API?"
        if status == 429:
            detail += " (rate limit: try again later)" if "later" not in detail else ""
        if reference:
            detail += f" (reference {reference})"
        return ClientError(_printable(detail), status=status, title=title, reference=reference)

    def _transport_error(self, exc: Exception, method: str, path: str) -> ClientError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return ClientError(
                f"Cannot reach the Exact server at {self.base_url} ({_describe(exc)}). Is it running? The address "
                f"comes from --url, {URL_ENV} or the default {DEFAULT_URL}."
            )
        if isinstance(exc, httpx.TimeoutException):
            return ClientError(f"The server at {self.base_url} did not answer {method} {API_PREFIX}{path} in time.")
        return ClientError(f"The connection to {self.base_url} failed during {method} {API_PREFIX}{path} "
                           f"({_describe(exc)}).")  # fmt: skip


def _segment(value: str) -> str:
    """One path segment: a challenge id can never reach another route."""
    return quote(value, safe="")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _describe(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _detail_text(detail: object) -> str:
    if isinstance(detail, str):
        return detail.strip()
    if isinstance(detail, list):  # a framework's validation errors: [{"loc": [...], "msg": "..."}]
        parts = []
        for item in detail[:5]:
            if isinstance(item, dict) and item.get("msg"):
                where = ".".join(str(p) for p in item.get("loc", []) if p not in ("body", "query", "path"))
                parts.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
        return "; ".join(parts)
    return ""


def _retry_after(response: httpx.Response) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); 1 when absent or unreadable."""
    raw = response.headers.get("retry-after", "").strip()
    if not raw:
        return 1.0
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return 1.0
    return max(0.0, when.timestamp() - time.time())


# ---------------------------------------------------------------------------------------------------------------
# Text output


def describe_status(submission: Submission) -> str:
    """What a waiting submission is waiting for, e.g. 'queued for scoring' or 'being scored (40 of 100 samples)'."""
    status = submission.get("status")
    progress = submission.get("progress") or {}
    done, total = progress.get("done"), progress.get("total")
    counted = f" ({done} of {total} samples)" if isinstance(done, int) and isinstance(total, int) and total else ""
    if status == "queued":
        return "queued for scoring" + (counted if done else "")
    if status == "running":
        return "being scored" + counted
    if status == "done":
        return "scored"
    if status == "failed":
        return "failed"
    return str(status)


def _printable(text: str) -> str:
    """Text from the server as it may reach a terminal: control characters (escape sequences) become '?'."""
    return "".join(
        "?" if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c != "\t" else c for c in text
    ).replace("\t", " ")


def cell(value: object, *, width: int = 40) -> str:
    """A table cell: numbers compactly, times in local time to the minute, text cut to ``width``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    text = _printable(str(value))
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:?\d\d|Z)?", text):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
        return (moment.astimezone() if moment.tzinfo else moment).strftime("%Y-%m-%d %H:%M")
    return text if len(text) <= width else text[: width - 1] + "…"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, numeric: Sequence[bool] = ()) -> str:
    """An aligned plain-text table: a header, a rule, one line per row. Columns marked ``numeric`` (or holding
    only numbers) are right-aligned. Values are formatted with ``cell``."""
    texts = [[cell(v) for v in row] for row in rows]
    count = len(headers)
    right = [
        (i < len(numeric) and numeric[i])
        or (any(_is_number(r[i]) for r in rows) and all(r[i] is None or _is_number(r[i]) for r in rows))
        for i in range(count)
    ]
    widths = [max([len(headers[i]), *(len(t[i]) for t in texts)]) for i in range(count)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out.extend(line(t) for t in texts)
    return "\n".join(out)


def page_text(
    *, offset: int, shown: int, total: int, next_offset: int | None, next_command: str, what: str = "rows"
) -> str:
    """'rows 51–100 of 230; next page: <command>' (or that this is the last page)."""
    if total == 0 or shown == 0:
        if offset and total:
            return f"no {what} from offset {offset}: there are {total} in all."
        return f"no {what}."
    first, last = offset + 1, offset + shown
    text = f"{what} {first}–{last} of {total}"
    if next_offset is not None and next_offset < total:
        return f"{text}; next page: {next_command}"
    return f"{text} (last page)."


def page_items(page: Mapping[str, Any]) -> list[Any]:
    """The items of a list answer (``items``; older or other spellings tolerated)."""
    for key in ("items", "challenges", "results", "data"):
        value = page.get(key)
        if isinstance(value, list):
            return value
    return []


_COLUMN_LABELS = {
    "rank": "rank",
    "username": "user",
    "method": "method",
    "method_name": "method",
    "score": "score",
    "vs_random": "vs random",
    "created_at": "submitted",
    "submissions": "submissions",
}


def _column_names(columns: Sequence[Any]) -> list[tuple[str, str]]:
    """(key, header) of the columns worth printing: internal ids are left out."""
    named = []
    for column in columns:
        if isinstance(column, Mapping):
            key = str(column.get("name") or column.get("key") or "")
            label = str(column.get("label") or _COLUMN_LABELS.get(key, key))
        else:
            key = str(column)
            label = _COLUMN_LABELS.get(key, key)
        if key and not key.endswith("_id") and key != "id":
            named.append((key, _printable(label)))
    return named


def leaderboard_table(page: Mapping[str, Any]) -> tuple[list[str], list[list[object]]]:
    """Headers and rows of a leaderboard page, in the server's column order (rank, user, score, submitted, ...)."""
    all_columns = list(page.get("columns") or [])
    rows = list(page.get("rows") or [])
    if not all_columns and rows and isinstance(rows[0], Mapping):
        all_columns = list(rows[0].keys())
    keys = [k for k, _ in _column_names(all_columns)]
    raw_keys = [str(c.get("name") or c.get("key")) if isinstance(c, Mapping) else str(c) for c in all_columns]
    table = []
    for row in rows:
        if isinstance(row, Mapping):
            table.append([row.get(k) for k in keys])
        else:  # a row as a list in the order of ``columns``
            values = dict(zip(raw_keys, row, strict=False))
            table.append([values.get(k) for k in keys])
    return [h for _, h in _column_names(all_columns)], table


def challenges_table(page: Mapping[str, Any]) -> tuple[list[str], list[list[object]]]:
    headers = ["id", "title", "participants", "type"]
    rows = [
        [
            c.get("challenge_id"),
            c.get("title"),
            c.get("participants"),
            "server-scored" if c.get("scored_on_server") else "score-only",
        ]
        for c in page_items(page)
    ]
    return headers, rows


def summary_table(submission: Submission) -> tuple[list[str], list[list[object]]]:
    """Split, metric, mean, std (and samples scored) of a scored submission, as far as the viewer may see."""
    headers = ["split", "metric", "mean", "std", "scored"]
    rows: list[list[object]] = []
    for row in submission.get("summary") or []:
        mean, std = row.get("mean"), row.get("std")
        rows.append(
            [
                row.get("split"),
                row.get("metric"),
                f"{mean:.4f}" if isinstance(mean, int | float) else None,
                f"{std:.4f}" if isinstance(std, int | float) else None,
                row.get("scored"),
            ]
        )
    return headers, rows
