"""The API's answers as pydantic models: they make the OpenAPI document, and FastAPI checks every answer
against them. Built from the services' dataclasses by web/api.py; nothing here decides what may be shown."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    reference: str | None = None


class QueueOut(BaseModel):
    queued: int
    running: int
    depth: int
    oldest_job_age_s: float | None
    done_last_hour: int
    failed_last_hour: int


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    database: dict[str, Any]
    scoring_queue: QueueOut | None


class TokenOut(BaseModel):
    name: str
    scopes: list[str]
    expires_at: datetime


class MeOut(BaseModel):
    username: str
    role: str
    token: TokenOut


class ChallengeSummaryOut(BaseModel):
    challenge_id: str
    title: str
    created_at: datetime
    participants: int
    submissions: int
    best_score: float | None
    scored_on_server: bool


class ChallengePageOut(BaseModel):
    items: list[ChallengeSummaryOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class RulesOut(BaseModel):
    phase: Literal["upcoming", "open", "closed"]
    starts_at: datetime | None
    ends_at: datetime | None
    metric_name: str
    higher_is_better: bool
    min_value: float | None
    max_value: float | None
    daily_limit: int | None
    total_limit: int | None
    final_count: int
    private_revealed: bool


class FileOut(BaseModel):
    kind: str
    label: str
    name: str
    size_bytes: int
    download_path: str


class EvaluationOut(BaseModel):
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


class ModelOut(BaseModel):
    id: int
    architecture: str
    label: str
    source: str
    explained: bool
    status: str
    test_accuracy: float | None
    validation_accuracy: float | None
    epochs_done: int
    epochs_total: int
    error: str | None
    weights_path: str | None
    onnx_path: str | None
    pytorch_snippet: str | None


class ModelListOut(BaseModel):
    items: list[ModelOut]


class ChallengeOut(ChallengeSummaryOut):
    description: str
    rules: RulesOut
    files: list[FileOut]
    evaluation: EvaluationOut | None


class AllowanceOut(BaseModel):
    phase: Literal["upcoming", "open", "closed"]
    may_submit: bool
    left: int | None
    today_left: int | None
    total_left: int | None
    resets_at: datetime


class ScoreIn(BaseModel):
    score: StrictFloat | StrictInt | StrictStr = Field(
        description='The metric\'s value, as a number or as decimal text (e.g. "0.8731").'
    )
    request_key: str | None = Field(
        default=None, min_length=1, max_length=100, description="Makes the submit idempotent (one row per key)."
    )


class ScoreOut(BaseModel):
    score_id: int
    challenge_id: str
    username: str
    score: float
    created_at: datetime
    rank: int
    best_score: float
    ranked_users: int
    repeated: bool


class SubmissionOut(BaseModel):
    id: int
    challenge_id: str
    method_name: str
    description: str
    url: str
    status: Literal["queued", "running", "done", "failed"]
    error: str | None
    primary_metric: str
    public_value: float | None
    moderation: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class SubmissionPageOut(BaseModel):
    items: list[SubmissionOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class ProgressOut(BaseModel):
    done: int
    total: int


class SummaryRowOut(BaseModel):
    split: str
    metric: str
    mean: float | None
    std: float | None
    scored: int
    not_scorable: int


class PerSampleOut(BaseModel):
    split: str
    metric: str
    sample: int
    value: float | None


class SubmissionDetailOut(SubmissionOut):
    progress: ProgressOut | None
    summary: list[SummaryRowOut]
    per_sample: list[PerSampleOut] = Field(description="Only the samples the viewer may see per sample.")


class LeaderboardOut(BaseModel):
    challenge_id: str
    board: Literal["public", "private"]
    show_all: bool
    metric_name: str
    higher_is_better: bool
    columns: list[str]
    rows: list[dict[str, Any]]
    baselines: list[dict[str, Any]] | None
    total: int
    limit: int
    offset: int
    next_offset: int | None
