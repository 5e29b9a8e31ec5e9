"""A small, realistic demo: an organiser, participants, score-only challenges with files and a month of scores,
and two server-scored XAI-TRIS competitions on the rigid scenario (whose masks stay secret): one running (public
board, a countdown, daily limits) and one finished (its private board revealed). Every challenge has an owner.

Idempotent: users and challenges that already exist are left as they are. Demo accounts get one password,
taken from EXACT_DEMO_PASSWORD or generated, and reported to the caller (never stored in the code).
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from db import challenges as challenges_sql
from db import competition as competition_sql
from db import scores as scores_sql
from db import users as users_sql
from db.database import Database
from exact import passwords
from exact.storage import MediaStorage, UploadedFile

DEMO_ORGANISER = "olivia.organiser"
DEMO_PARTICIPANTS = ("alice", "bob", "carol", "dmitri", "eun-ji", "farah", "gustavo")

_XAI_TEMPLATE = '''"""XAI method template for the {title} challenge.

Implement explain(model, x) to return one relevance value per input feature, run it on every
evaluation sample, then compute your score as described on the challenge page and submit it.
"""

import numpy as np


def explain(model, x: np.ndarray) -> np.ndarray:
    raise NotImplementedError("your XAI method here")
'''

_CHALLENGES = (
    {
        "challenge_id": "xai-tris-linear-8x8",
        "title": "XAI-TRIS linear 8×8",
        "difficulty": 0.82,
        "metric": "Importance mass accuracy",
        "description": (
            "Find the **tetromino** that drives the classifier.\n\n"
            "Each 8×8 image holds a T or an L pattern added to Gaussian noise; a small model was trained to tell "
            "them apart. Explain its decisions: the score is the *importance mass accuracy* of your attributions "
            "against the true pattern (higher is better, 1 is perfect).\n\n"
            "| split | samples |\n|---|---|\n| train | 800 |\n| test | 200 |"
        ),
    },
    {
        "challenge_id": "xai-tris-xor-8x8",
        "title": "XAI-TRIS XOR 8×8",
        "difficulty": 0.61,
        "metric": "EMD score",
        "description": (
            "The class depends on **both** patterns at once (XOR), which defeats many saliency methods.\n\n"
            "Submit the mean *EMD score* of your explanations over the evaluation set (higher is better)."
        ),
    },
    {
        "challenge_id": "tabular-credit-attribution",
        "title": "Tabular credit scoring attribution",
        "difficulty": 0.7,
        "metric": "Precision at 3",
        "description": (
            "A gradient-boosted model scores credit applications from 12 features, 3 of which truly matter.\n\n"
            "Rank the features by attribution; your score is the *precision at 3* against the known "
            "informative features."
        ),
    },
)


@dataclass
class DemoReport:
    users_created: list[str] = field(default_factory=list)
    challenges_created: list[str] = field(default_factory=list)
    scores_created: int = 0
    password: str | None = None


def _dataset_csv(rng: np.random.Generator, rows: int = 200, features: int = 12) -> bytes:
    data = rng.normal(size=(rows, features))
    labels = (data[:, 0] + 0.5 * data[:, 1] - data[:, 2] > 0).astype(int)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f"x{i}" for i in range(features)] + ["label"])
    for row, label in zip(data, labels, strict=True):
        writer.writerow([f"{v:.5f}" for v in row] + [int(label)])
    return out.getvalue().encode()


def _model_json(rng: np.random.Generator, features: int = 12) -> bytes:
    weights = rng.normal(scale=0.1, size=features)
    weights[:3] = [1.0, 0.5, -1.0]
    return json.dumps({"type": "logistic-regression", "weights": weights.round(4).tolist(), "bias": 0.0}).encode()


# (id, title, days since the start, days until the end): rigid, so the test masks cannot be derived from labels.
_BENCHMARKS = (
    ("xai-tris-rigid-8x8-running", "XAI-TRIS rigid 8×8 (running competition)", 10, 14),
    ("xai-tris-rigid-8x8-finished", "XAI-TRIS rigid 8×8 (finished competition)", 40, -2),
)
# Simulated participants' methods: how much of the true pattern their attributions recover.
_METHODS = (("alice", "Pattern-aware saliency", 0.9), ("bob", "Gradient × input", 0.5), ("carol", "Noisy LRP", 0.25))


def _simulated_submissions(
    db: Database,
    storage: MediaStorage,
    private: MediaStorage,
    report: DemoReport,
    rng: np.random.Generator,
    challenge_id: str,
    masks: np.ndarray,
    methods: tuple[tuple[str, str, float], ...],
) -> None:
    """Each simulated participant uploads attributions that recover ``quality`` of the true pattern; scored here."""
    from exact.intake import submit_attributions
    from exact.scoring import process_submission

    for username, method, quality in methods:
        with db.connect() as conn:
            user = users_sql.get_by_username(conn, username)
        attributions = quality * masks + (1 - quality) * np.abs(rng.standard_normal(masks.shape))
        buffer = io.BytesIO()
        np.save(buffer, attributions, allow_pickle=False)
        submission = submit_attributions(
            db,
            storage,
            user["id"],
            challenge_id,
            UploadedFile(f"{username}.npy", buffer.getvalue()),
            method_name=method,
            description="Demo submission.",
        )
        process_submission(db, storage, private, submission.id)
        report.scores_created += 1


def _benchmark_challenges(
    db: Database, storage: MediaStorage, private: MediaStorage, report: DemoReport, rng: np.random.Generator
) -> None:
    from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
    from exact.competition import Rules
    from exact.evaluation_sets import prepare_benchmark, secret_seed
    from exact.scoring import score_waiting_baselines
    from exact.xaitris import BenchmarkSpec

    with db.connect() as conn:
        organiser = users_sql.get_by_username(conn, DEMO_ORGANISER)
    now = datetime.now(UTC)
    for challenge_id, title, started_days_ago, ends_in_days in _BENCHMARKS:
        with db.connect() as conn:
            if challenges_sql.exists(conn, challenge_id):
                continue
        spec = BenchmarkSpec(scenario="rigid", size=8, alpha=0.5, n_samples=1000, seed=secret_seed())
        prepared = prepare_benchmark(spec)
        description = (
            "An XAI-TRIS **rigid** benchmark on 8×8 images: a T or an L tetromino, rotated and placed at random, "
            "in Gaussian noise.\n\n"
            "Download the dataset (training masks included) and the evaluation inputs (with the development "
            "samples' masks), explain the inputs with your method and upload the attribution maps: the server "
            "scores them against the hidden ground truth. The leaderboard ranks the public part while the "
            "competition runs; the private part decides the final ranking."
        )
        # Created open so the demo's submissions are accepted, then dated as a running or a finished competition.
        create_challenge(
            db,
            storage,
            organiser["id"],
            ChallengeForm(title, description, challenge_id),
            {},
            evaluation=EvaluationChoice(
                prepared=prepared, private=private, primary_metric="emd", shown_metrics=("mass", "precision", "auc")
            ),
            rules=Rules(daily_limit=5, total_limit=50, final_count=2),
        )
        score_waiting_baselines(db, storage, private, challenge_id)
        _simulated_submissions(db, storage, private, report, rng, challenge_id, prepared.masks, _METHODS)
        with db.transaction() as conn:
            competition_sql.save_rules(
                conn,
                challenge_id,
                {
                    "starts_at": now - timedelta(days=started_days_ago),
                    "ends_at": now + timedelta(days=ends_in_days),
                    "reveal": "auto",
                    "daily_limit": 5,
                    "total_limit": 50,
                    "final_count": 2,
                    "metric_name": "Score",
                    "higher_is_better": True,
                    "min_value": None,
                    "max_value": None,
                },
            )
            conn.exec_driver_sql(
                "UPDATE api_challenge SET created_at = %s WHERE challenge_id = %s",
                (now - timedelta(days=started_days_ago), challenge_id),
            )
        report.challenges_created.append(challenge_id)


PAPER_CHALLENGE_ID = "xai-tris-paper-rigid-8x8"


def _paper_challenge(
    db: Database,
    storage: MediaStorage,
    private: MediaStorage,
    report: DemoReport,
    rng: np.random.Generator,
    training_epochs: int,
    train_now: bool,
) -> None:
    """The XAI-TRIS paper protocol (rigid, 8×8, white background) with the paper's models trained here and their
    Captum attributions ranked as reference rows (docs/models.md)."""
    from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
    from exact.competition import Rules
    from exact.evaluation_sets import prepare_benchmark, secret_seed
    from exact.scoring import score_waiting_baselines
    from exact.trained_models import TrainingPlan, models_available, train_next
    from exact.xaitris import BenchmarkSpec

    with db.connect() as conn:
        if challenges_sql.exists(conn, PAPER_CHALLENGE_ID):
            return
        organiser = users_sql.get_by_username(conn, DEMO_ORGANISER)
    spec = BenchmarkSpec.paper("rigid", 8, "white", seed=secret_seed())
    prepared = prepare_benchmark(spec)
    trains = models_available()
    description = (
        "The **XAI-TRIS paper protocol** (Clark et al., *Machine Learning* 2024) for the rigid scenario on 8×8 "
        "images: a T or an L tetromino, rotated and placed at random in white noise, with the paper's signal "
        "weight, sample count, split and masks, so scores compare with the paper's figures.\n\n"
        "Explain the shipped **CNN** (download it below, with its accuracy and a PyTorch snippet): compute your "
        "method's attributions of the true class for every evaluation input and upload them. The paper's "
        "methods (Saliency, Integrated Gradients, Gradient SHAP, DeepLift, LRP) applied to the same model are "
        "on the leaderboard as reference rows."
    )
    create_challenge(
        db,
        storage,
        organiser["id"],
        ChallengeForm("XAI-TRIS paper protocol: rigid 8×8", description, PAPER_CHALLENGE_ID),
        {},
        evaluation=EvaluationChoice(
            prepared=prepared,
            private=private,
            primary_metric="emd",
            shown_metrics=("precision", "mass", "auc"),
            training=TrainingPlan(explained="CNN8by8", epochs=training_epochs) if trains else None,
        ),
        rules=Rules(daily_limit=5, total_limit=50, final_count=2),
    )
    while trains and train_now and train_next(db, storage, private, challenge_id=PAPER_CHALLENGE_ID) is not None:
        pass  # the command line trains here, so its models and their baselines exist once it returns
    score_waiting_baselines(db, storage, private, PAPER_CHALLENGE_ID)
    _simulated_submissions(db, storage, private, report, rng, PAPER_CHALLENGE_ID, prepared.masks, _METHODS[:2])
    report.challenges_created.append(PAPER_CHALLENGE_ID)


def load_demo(
    db: Database,
    storage: MediaStorage,
    private: MediaStorage | None = None,
    *,
    seed: int = 7,
    training_epochs: int = 500,
    train_now: bool = True,
) -> DemoReport:
    """``training_epochs``: the paper trains for 500; tests pass a few so a demo loads in seconds. ``train_now``
    False leaves the training to the background workers (the set-up page: a web request must not train)."""
    rng = np.random.default_rng(seed)
    report = DemoReport()
    password = os.environ.get("EXACT_DEMO_PASSWORD") or secrets.token_urlsafe(9)
    password_hash = passwords.make_password(password)
    now = datetime.now(UTC)

    with db.transaction() as conn:
        for index, username in enumerate((DEMO_ORGANISER, *DEMO_PARTICIPANTS)):
            if users_sql.username_taken(conn, username):
                continue
            first = username.split(".")[0].split("-")[0].capitalize()
            users_sql.insert_user(
                conn,
                username=username,
                password_hash=password_hash,
                email=f"{username}@example.org",
                first_name=first,
                is_staff=username == DEMO_ORGANISER,
                date_joined=now - timedelta(days=40 - index),
            )
            report.users_created.append(username)
    if report.users_created:
        report.password = password

    with db.connect() as conn:
        organiser_id = users_sql.get_by_username(conn, DEMO_ORGANISER)["id"]
    for offset, spec in enumerate(_CHALLENGES):
        challenge_id = spec["challenge_id"]
        with db.connect() as conn:
            if challenges_sql.exists(conn, challenge_id):
                continue
        files = {
            "dataset": UploadedFile(f"{challenge_id}-data.csv", _dataset_csv(rng)),
            "model": UploadedFile(f"{challenge_id}-model.json", _model_json(rng)),
            "xai": UploadedFile("xai_method_template.py", _XAI_TEMPLATE.format(title=spec["title"]).encode()),
        }
        with storage.staged() as staged, db.transaction() as conn:
            paths = {kind: staged.write(f"challenges/{challenge_id}/{kind}", f) for kind, f in files.items()}
            challenges_sql.insert(
                conn,
                challenge_id=challenge_id,
                title=spec["title"],
                description=spec["description"],
                mlmodel=paths["model"],
                dataset=paths["dataset"],
                xaimethod=paths["xai"],
            )
            conn.exec_driver_sql(
                "UPDATE api_challenge SET created_at = %s WHERE challenge_id = %s",
                (now - timedelta(days=30 - 5 * offset), challenge_id),
            )
            challenges_sql.set_owner(conn, challenge_id, organiser_id)
            competition_sql.save_rules(
                conn,
                challenge_id,
                {
                    "starts_at": None, "ends_at": None, "reveal": "auto", "daily_limit": 5, "total_limit": None,
                    "final_count": 2, "metric_name": spec["metric"], "higher_is_better": True,
                    "min_value": 0.0, "max_value": 1.0,
                },
            )  # fmt: skip
            # Each participant improves over a few attempts; skill differs per person.
            for skill_rank, username in enumerate(DEMO_PARTICIPANTS):
                skill = spec["difficulty"] * (1 - 0.06 * skill_rank)
                attempts = int(rng.integers(1, 6))
                for attempt in range(attempts):
                    score = float(np.clip(skill * (0.85 + 0.04 * attempt) + rng.normal(scale=0.02), 0, 1))
                    when = now - timedelta(days=float(rng.uniform(0, 25 - 5 * offset)), minutes=attempt)
                    scores_sql.insert(
                        conn, username=username, challenge_id=challenge_id, score=round(score, 4), created_at=when
                    )
                    report.scores_created += 1
        report.challenges_created.append(challenge_id)
    if private is not None:
        _benchmark_challenges(db, storage, private, report, rng)
        _paper_challenge(db, storage, private, report, rng, training_epochs, train_now)
    return report
