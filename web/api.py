"""The token API under /api/v1 (docs/api.md): FastAPI handlers over the same services as the pages.

Every handler is a plain ``def``: FastAPI runs it in its thread pool, so database work never blocks the event
loop that also serves the pages' websockets. Handlers parse, call one service, and shape its answer; what may
be shown is decided by the services (exact.permissions), exactly as for the pages.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

import pandas as pd
from fastapi import Depends, FastAPI, File, Form, Query, Request, Security, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware import Middleware

from exact import api_tokens, intake, operations, results, scoring, trained_models
from exact.accounts import User
from exact.api_tokens import TokenUser
from exact.arrays import ATTRIBUTIONS_KEY
from exact.challenges import FILE_KINDS, Challenge, file_for_download, get_challenge, list_challenges
from exact.competition import allowance, get_rules
from exact.errors import DatabaseUnavailable, InvalidToken, PermissionDenied
from exact.evaluation_sets import evaluated_challenges, get_evaluation
from exact.scores import iter_leaderboard_csv, leaderboard, submit_score
from exact.storage import UploadedFile
from web import schemas
from web.callers import address_key, authenticate_bearer, spend
from web.docs_page import render_docs
from web.limits import BodyLimit, CatchAll, UploadGate
from web.problems import EXCEPTION_HANDLERS, PROBLEM_JSON, ApiProblem
from web.resources import database, media, settings

EVALUATION_INPUTS = "evaluation-inputs"
FileKind = Literal["dataset", "model", "xai", "evaluation-inputs"]

_PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.Problem, "content": {PROBLEM_JSON: {}}, "description": description}
    for status, description in {
        401: "No token, or a token that is not (or no longer) valid",
        403: "The token's user may not do this, or the token lacks the scope",
        404: "No such thing",
        422: "Refused input; nothing was changed",
        429: "Too many requests: see Retry-After",
        503: "The database is unavailable or the request took too long",
    }.items()
}

api = FastAPI(
    title="Exact API",
    version="1",
    summary="Explainable-AI benchmark challenges: browse, submit, follow your results.",
    description=(
        "Personal access tokens are created on the Profile page and sent as `Authorization: Bearer exact_…`. "
        "Errors are `application/problem+json`. Lists page with `limit`/`offset` and say `total`."
    ),
    openapi_url="/openapi.json",
    docs_url=None,  # hosted below without a CDN (docs_page.py): the API documents itself even offline
    redoc_url=None,
    exception_handlers=EXCEPTION_HANDLERS,
    responses=_PROBLEM_RESPONSES,
    middleware=[Middleware(CatchAll), Middleware(BodyLimit), Middleware(UploadGate)],
)

_bearer = HTTPBearer(auto_error=False, description="A personal access token from your Exact profile page.")


def caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
) -> TokenUser | None:
    """Who the request acts as (None: a visitor), after the rate limit of its token or its address.

    A request that sends an Authorization header is never served as a visitor: a bad token is a 401."""
    address = address_key(request.client.host if request.client else None)
    if "authorization" not in request.headers:
        spend(address)
        return None
    if credentials is None:  # a header that is not "Bearer <token>"
        spend(address)
        raise ApiProblem(401, "Send the token as 'Authorization: Bearer exact_…'.",
                         headers={"WWW-Authenticate": 'Bearer realm="exact"'})  # fmt: skip
    who = authenticate_bearer(address, credentials.credentials)
    spend(f"token:{who.token_id}")
    return who


def _needs(scope: str):
    def dependency(who: Annotated[TokenUser | None, Depends(caller)]) -> User:
        if who is None:
            raise ApiProblem(
                401,
                f"This needs an API token with the {scope!r} scope (Authorization: Bearer …); create one on your "
                "profile page.",
                headers={"WWW-Authenticate": 'Bearer realm="exact"'},
            )
        return who.require(scope)

    return dependency


Visitor = Annotated[TokenUser | None, Depends(caller)]
Reader = Annotated[User, Depends(_needs("read"))]
Submitter = Annotated[User, Depends(_needs("submit"))]


def _next_offset(offset: int, count: int, total: int) -> int | None:
    return offset + count if offset + count < total else None


def _plain(value: Any) -> Any:
    """A table cell as JSON: no NaN, no pandas types."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime().isoformat()
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def _records(frame: pd.DataFrame | None, *, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    if frame is None:
        return []
    columns = [c for c in frame.columns if c not in drop]
    return [{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in frame[columns].itertuples(index=False)]


# --- operations ---------------------------------------------------------------------------------------------------


@api.get("/health", response_model=schemas.HealthOut, tags=["operations"], summary="Database and scoring queue")
def health() -> JSONResponse:
    try:
        db = database()
    except DatabaseUnavailable:  # not even the first connection (the schema check at start) got through
        report = operations.Health(False, "unreachable", None)
    else:
        report = operations.health(db)
    queue = report.queue
    body = schemas.HealthOut(
        status="ok" if report.ok else "unavailable",
        database={"ok": report.database_ok, "error": report.database_error},
        scoring_queue=None
        if queue is None
        else schemas.QueueOut(
            queued=queue.queued,
            running=queue.running,
            depth=queue.depth,
            oldest_job_age_s=queue.oldest_age_s,
            done_last_hour=queue.done_last_hour,
            failed_last_hour=queue.failed_last_hour,
        ),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if report.ok else 503)


@api.get("/docs", include_in_schema=False)
def docs() -> HTMLResponse:
    return HTMLResponse(render_docs(api.openapi()))


@api.get("/me", response_model=schemas.MeOut, tags=["account"], summary="Who this token acts as")
def me(who: Visitor) -> schemas.MeOut:
    if who is None:
        raise ApiProblem(401, "Send a token: Authorization: Bearer exact_….",
                         headers={"WWW-Authenticate": 'Bearer realm="exact"'})  # fmt: skip
    token = next((t for t in api_tokens.list_tokens(database(), who.user.id) if t.id == who.token_id), None)
    if token is None:  # revoked between the check and this read
        raise InvalidToken()
    return schemas.MeOut(
        username=who.user.username,
        role=who.user.role,
        token=schemas.TokenOut(name=token.name, scopes=list(token.scopes), expires_at=token.expires_at),
    )


# --- challenges ---------------------------------------------------------------------------------------------------


def _summary(challenge: Challenge, scored_on_server: bool) -> dict[str, Any]:
    return {
        "challenge_id": challenge.challenge_id,
        "title": challenge.title,
        "created_at": challenge.created_at,
        "participants": challenge.participants,
        "submissions": challenge.submissions,
        "best_score": _plain(challenge.best_score),
        "scored_on_server": scored_on_server,
    }


@api.get("/challenges", response_model=schemas.ChallengePageOut, tags=["challenges"], summary="List and search")
def challenges(
    _: Visitor,
    search: Annotated[str, Query(max_length=200)] = "",
    sort: Literal["newest", "oldest", "participants", "submissions", "best_score", "title"] = "newest",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.ChallengePageOut:
    db = database()
    page = list_challenges(db, search=search, sort=sort, limit=limit, offset=offset)
    scored = evaluated_challenges(db, [c.challenge_id for c in page.items])
    return schemas.ChallengePageOut(
        items=[schemas.ChallengeSummaryOut(**_summary(c, c.challenge_id in scored)) for c in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
        next_offset=_next_offset(offset, len(page.items), page.total),
    )


def _download_path(challenge_id: str, kind: str) -> str:
    return f"/api/v1/challenges/{challenge_id}/files/{kind}"


@api.get("/challenges/{challenge_id}", response_model=schemas.ChallengeOut, tags=["challenges"],
         summary="Details, rules, files and the evaluation-set format")  # fmt: skip
def challenge_details(challenge_id: str, _: Visitor) -> schemas.ChallengeOut:
    db = database()
    challenge = get_challenge(db, challenge_id)
    rules = get_rules(db, challenge.challenge_id)
    evaluation = get_evaluation(db, challenge.challenge_id)
    storage = media()
    files = []
    for kind, (label, _column, _types) in FILE_KINDS.items():
        path = file_for_download(storage, challenge, kind)
        if path is not None:
            files.append(schemas.FileOut(kind=kind, label=label, name=path.name, size_bytes=path.stat().st_size,
                                         download_path=_download_path(challenge.challenge_id, kind)))  # fmt: skip
    evaluation_out = None
    if evaluation is not None:
        inputs = _evaluation_inputs(evaluation)
        if inputs is not None:
            files.append(schemas.FileOut(
                kind=EVALUATION_INPUTS, label="Evaluation inputs", name=inputs.name, size_bytes=inputs.stat().st_size,
                download_path=_download_path(challenge.challenge_id, EVALUATION_INPUTS),
            ))  # fmt: skip
        evaluation_out = schemas.EvaluationOut(
            n_samples=evaluation.n_samples,
            height=evaluation.height,
            width=evaluation.width,
            shape=list(evaluation.shape),
            file_types=[".npy", ".npz"],
            npz_key=ATTRIBUTIONS_KEY,
            primary_metric=evaluation.primary_metric,
            shown_metrics=list(evaluation.shown_metrics),
            split_sizes=evaluation.split_sizes,
            benchmark=evaluation.benchmark,
        )
    return schemas.ChallengeOut(
        **_summary(challenge, evaluation is not None),
        description=challenge.description,
        rules=schemas.RulesOut(
            phase=rules.phase(),
            starts_at=rules.starts_at,
            ends_at=rules.ends_at,
            metric_name=rules.metric_name,
            higher_is_better=rules.higher_is_better,
            min_value=rules.min_value,
            max_value=rules.max_value,
            daily_limit=rules.daily_limit,
            total_limit=rules.total_limit,
            final_count=rules.final_count,
            private_revealed=rules.private_revealed(),
        ),
        files=files,
        evaluation=evaluation_out,
    )


def _evaluation_inputs(evaluation):
    try:
        path = media().resolve(evaluation.inputs_path)
    except Exception:  # noqa: BLE001 - a stored path that does not resolve is a missing file
        return None
    return path if path.is_file() else None


@api.get("/challenges/{challenge_id}/files/{kind}", tags=["challenges"], summary="Download a challenge file",
         response_class=FileResponse, responses={200: {"content": {"application/octet-stream": {}}}})  # fmt: skip
def challenge_file(challenge_id: str, kind: FileKind, _: Visitor) -> FileResponse:
    db = database()
    challenge = get_challenge(db, challenge_id)
    if kind == EVALUATION_INPUTS:
        evaluation = get_evaluation(db, challenge.challenge_id)
        path = None if evaluation is None else _evaluation_inputs(evaluation)
    else:
        path = file_for_download(media(), challenge, kind)
    if path is None:
        raise ApiProblem(404, f"Challenge {challenge.challenge_id!r} has no {kind} file.")
    return FileResponse(path, filename=path.name, media_type="application/octet-stream")


def _model_out(model: trained_models.ChallengeModel) -> schemas.ModelOut:
    base = f"/api/v1/challenges/{model.challenge_id}/models/{model.id}"
    ready = model.status == "ready"
    return schemas.ModelOut(
        id=model.id, architecture=model.architecture, label=model.label, source=model.source,
        explained=model.explained, status=model.status, test_accuracy=model.test_accuracy,
        validation_accuracy=model.validation_accuracy, epochs_done=model.epochs_done,
        epochs_total=model.epochs_total, error=model.error,
        weights_path=f"{base}/weights" if ready and model.has_weights else None,
        onnx_path=f"{base}/onnx" if ready and model.has_onnx else None,
        pytorch_snippet=trained_models.pytorch_snippet(model) if ready else None,
    )  # fmt: skip


@api.get("/challenges/{challenge_id}/models", response_model=schemas.ModelListOut, tags=["challenges"],
         summary="The models to explain, with accuracy and files")  # fmt: skip
def challenge_models(challenge_id: str, who: Visitor) -> schemas.ModelListOut:
    db = database()
    challenge = get_challenge(db, challenge_id)
    models = trained_models.list_models(db, who.id if who else None, challenge.challenge_id)
    return schemas.ModelListOut(items=[_model_out(model) for model in models])


@api.get("/challenges/{challenge_id}/models/{model_id}/{kind}", tags=["challenges"], summary="Download a model",
         response_class=FileResponse, responses={200: {"content": {"application/octet-stream": {}}}})  # fmt: skip
def challenge_model_file(
    challenge_id: str, model_id: int, kind: Literal["weights", "onnx"], _: Visitor
) -> FileResponse:
    db = database()
    challenge = get_challenge(db, challenge_id)
    path = trained_models.model_file(db, media(), challenge.challenge_id, model_id, kind)
    name = f"{challenge.challenge_id}-{path.name}"
    return FileResponse(path, filename=name, media_type="application/octet-stream")


@api.get("/challenges/{challenge_id}/allowance", response_model=schemas.AllowanceOut, tags=["submitting"],
         summary="Your remaining submissions now")  # fmt: skip
def challenge_allowance(challenge_id: str, user: Reader) -> schemas.AllowanceOut:
    db = database()
    challenge = get_challenge(db, challenge_id)
    left = allowance(db, user.id, challenge.challenge_id)
    if left is None:  # the user was deactivated between the token check and now
        raise PermissionDenied("This account is not active.")
    return schemas.AllowanceOut(phase=left.phase, may_submit=left.may_submit, left=left.left,
                                today_left=left.today_left, total_left=left.total_left,
                                resets_at=left.resets_at)  # fmt: skip


# --- submitting ---------------------------------------------------------------------------------------------------


def _service_key(user: User, challenge_id: str, request_key: str | None) -> str | None:
    """The client's idempotency key as the services store it: one namespace per user and challenge (another
    user's key, or the same key on another challenge, is another key), of fixed length whatever was sent."""
    if request_key is None:
        return None
    digest = hashlib.sha256(f"{challenge_id}\n{request_key}".encode()).hexdigest()[:40]
    return f"api:{user.id}:{digest}"


@api.post("/challenges/{challenge_id}/scores", response_model=schemas.ScoreOut, status_code=201,
          tags=["submitting"], summary="Submit a score (score-only challenges)")  # fmt: skip
def post_score(challenge_id: str, body: schemas.ScoreIn, user: Submitter) -> schemas.ScoreOut:
    result = submit_score(database(), user.id, challenge_id, body.score,
                          request_key=_service_key(user, challenge_id, body.request_key))  # fmt: skip
    return schemas.ScoreOut(
        score_id=result.score_id,
        challenge_id=result.challenge_id,
        username=result.username,
        score=result.score,
        created_at=result.created_at,
        rank=result.rank,
        best_score=result.best_score,
        ranked_users=result.ranked_users,
        repeated=result.repeated,
    )


def _submission_out(submission: intake.Submission) -> dict[str, Any]:
    return {
        "id": submission.id,
        "challenge_id": submission.challenge_id,
        "method_name": submission.method_name,
        "description": submission.description,
        "url": submission.url,
        "status": submission.status,
        "error": submission.error,
        "primary_metric": submission.primary_metric,
        # The rounded public aggregate: listed rows carry it as public_value, a fetched row as primary_value.
        "public_value": submission.public_value if submission.public_value is not None else submission.primary_value,
        "moderation": submission.moderation,
        "created_at": submission.created_at,
        "started_at": submission.started_at,
        "finished_at": submission.finished_at,
    }


@api.post("/challenges/{challenge_id}/submissions", response_model=schemas.SubmissionOut, status_code=202,
          tags=["submitting"], summary="Upload attributions (server-scored challenges)")  # fmt: skip
def post_submission(
    challenge_id: str,
    user: Submitter,
    file: Annotated[UploadFile, File(description=".npy, or .npz with the key 'attributions'")],
    method_name: Annotated[str, Form(min_length=1, max_length=100)],
    description: Annotated[str, Form(max_length=5000)] = "",
    url: Annotated[str, Form(max_length=500)] = "",
    request_key: Annotated[str | None, Form(min_length=1, max_length=100)] = None,
) -> schemas.SubmissionOut:
    # Starlette has spooled the file to disk as it arrived; the service reads it once to validate the array.
    file.file.seek(0)
    data = file.file.read(media().max_bytes + 1)
    key = _service_key(user, challenge_id, request_key)
    submission = intake.submit_attributions(
        database(),
        media(),
        user.id,
        challenge_id,
        UploadedFile(file.filename or "attributions.npy", data),
        method_name=method_name,
        description=description,
        url=url,
        request_key=key,
        max_waiting=settings().max_queued_per_user,
    )
    return schemas.SubmissionOut(**_submission_out(submission))


# --- following results ---------------------------------------------------------------------------------------------


_SPLIT_KEYS = {label: key for key, label in results.SPLIT_LABELS.items()}  # the summary's labels -> split names


@api.get("/submissions/{submission_id}", response_model=schemas.SubmissionDetailOut, tags=["results"],
         summary="A submission's status, progress and result")  # fmt: skip
def submission_detail(submission_id: int, user: Reader) -> schemas.SubmissionDetailOut:
    db = database()
    view = results.view_submission(db, user.id, submission_id)  # refuses what the result page refuses
    submission = view.submission
    progress = None
    own_or_organiser = view.access.is_organiser or submission.user_id == user.id
    if own_or_organiser and submission.status in ("queued", "running", "done"):
        done, total = scoring.progress(db, user.id, submission_id)
        progress = schemas.ProgressOut(done=done, total=total)
    summary = [
        schemas.SummaryRowOut(
            split=_SPLIT_KEYS.get(r["split"], r["split"]), metric=r["key"], mean=_plain(r["mean"]),
            std=_plain(r["std"]), scored=int(r["scored"]), not_scorable=int(r["not scorable"]),
        )
        for r in _records(view.summary)
    ]  # fmt: skip
    per_sample = [
        schemas.PerSampleOut(split=r["split"], metric=r["key"], sample=int(r["sample"]), value=_plain(r["value"]))
        for r in _records(view.per_sample)
    ]
    return schemas.SubmissionDetailOut(**_submission_out(submission), progress=progress, summary=summary,
                                       per_sample=per_sample)  # fmt: skip


@api.get("/me/submissions", response_model=schemas.SubmissionPageOut, tags=["results"],
         summary="Your own submissions, newest first")  # fmt: skip
def my_submissions(
    user: Reader,
    challenge_id: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=intake.MAX_SUBMISSIONS_PAGE_SIZE)] = intake.SUBMISSIONS_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.SubmissionPageOut:
    page = intake.submissions_page(database(), user.id, challenge_id, limit=limit, offset=offset)
    return schemas.SubmissionPageOut(
        items=[schemas.SubmissionOut(**_submission_out(s)) for s in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
        next_offset=_next_offset(offset, len(page.items), page.total),
    )


_INTERNAL_COLUMNS = ("score_id",)


@api.get("/challenges/{challenge_id}/leaderboard", response_model=schemas.LeaderboardOut, tags=["leaderboards"],
         summary="A page of the ranking")  # fmt: skip
def challenge_leaderboard(
    challenge_id: str,
    _: Visitor,
    board: Literal["public", "private"] | None = None,
    show_all: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.LeaderboardOut:
    db = database()
    challenge = get_challenge(db, challenge_id)
    ranking = leaderboard(db, challenge.challenge_id, show_all=show_all, board=board, limit=limit, offset=offset,
                          charts=False)  # fmt: skip
    rows = _records(ranking.table, drop=_INTERNAL_COLUMNS)
    return schemas.LeaderboardOut(
        challenge_id=challenge.challenge_id,
        board=ranking.board,
        show_all=show_all,
        metric_name=ranking.rules.metric_name,
        higher_is_better=ranking.rules.higher_is_better,
        columns=[c for c in ranking.table.columns if c not in _INTERNAL_COLUMNS],
        rows=rows,
        baselines=None if ranking.baselines is None else _records(ranking.baselines),
        total=ranking.total,
        limit=limit,
        offset=offset,
        next_offset=_next_offset(offset, len(rows), ranking.total),
    )


@api.get("/challenges/{challenge_id}/leaderboard.csv", tags=["leaderboards"], summary="The whole ranking as CSV",
         response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})  # fmt: skip
def challenge_leaderboard_csv(
    challenge_id: str,
    _: Visitor,
    board: Literal["public", "private"] | None = None,
    show_all: bool = False,
) -> StreamingResponse:
    db = database()
    challenge = get_challenge(db, challenge_id)
    chunks = iter_leaderboard_csv(db, challenge.challenge_id, show_all=show_all, board=board)
    first = next(chunks)  # the header: any refusal (an unrevealed final board) happens before the answer starts
    # Ids made through Django may hold any character: the header gets a safe name and the exact one (RFC 6266).
    name = f"{challenge.challenge_id}-leaderboard.csv"
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)

    def body():
        yield first
        yield from chunks

    disposition = f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(name)}"
    return StreamingResponse(body(), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": disposition})
