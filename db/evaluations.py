"""SQL for exact_evaluation (ground-truth sets), exact_submission (attribution submissions and baselines) and
exact_scoring_chunk (the parts of a submission that worker processes score in parallel)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

EVALUATION_COLUMNS = (
    "e.challenge_id, e.inputs_path, e.masks_path, e.n_samples, e.height, e.width, e.primary_metric, e.shown_metrics, "
    "e.benchmark, e.created_by, e.created_at, sp.n_development, sp.n_public, sp.n_private, sp.labels_published, "
    "r.precision_rule"
)
_EVALUATION_FROM = (
    "exact_evaluation e LEFT JOIN exact_evaluation_split sp ON sp.challenge_id = e.challenge_id "
    "LEFT JOIN exact_evaluation_rules r ON r.challenge_id = e.challenge_id"
)
SUBMISSION_COLUMNS = (
    "id, challenge_id, kind, user_id, username, method_name, description, url, file_path, file_size, file_sha256, "
    "request_key, status, error, primary_metric, primary_value, score_id, attempts, created_at, started_at, "
    "finished_at, lease_until"
)
_ALIASED_COLUMNS = ", ".join(f"s.{name.strip()}" for name in SUBMISSION_COLUMNS.split(","))
LEASE_SECONDS = 60
# Decimals of every figure that may be shown (exact.permissions.SHOWN_DECIMALS; db/ does not import exact/).
SHOWN_DECIMALS = 4


def insert_evaluation(conn: Connection, **values: Any) -> None:
    values = {**values, "benchmark": json.dumps(values["benchmark"]) if values.get("benchmark") else None}
    conn.execute(
        sa.text(
            """
            INSERT INTO exact_evaluation (challenge_id, inputs_path, masks_path, n_samples, height, width,
                                          primary_metric, shown_metrics, benchmark, created_by)
            VALUES (:challenge_id, :inputs_path, :masks_path, :n_samples, :height, :width, :primary_metric,
                    :shown_metrics, CAST(:benchmark AS jsonb), :created_by)
            """
        ),
        values,
    )


def insert_rules(conn: Connection, *, challenge_id: str, precision_rule: str) -> None:
    conn.execute(
        sa.text("INSERT INTO exact_evaluation_rules (challenge_id, precision_rule) VALUES (:challenge_id, :rule)"),
        {"challenge_id": challenge_id, "rule": precision_rule},
    )


def insert_split(conn: Connection, **values: Any) -> None:
    conn.execute(
        sa.text(
            """
            INSERT INTO exact_evaluation_split (challenge_id, n_development, n_public, n_private, labels_published)
            VALUES (:challenge_id, :n_development, :n_public, :n_private, :labels_published)
            """
        ),
        values,
    )


def get_evaluation(conn: Connection, challenge_id: str) -> dict[str, Any] | None:
    query = sa.text(f"SELECT {EVALUATION_COLUMNS} FROM {_EVALUATION_FROM} WHERE e.challenge_id = :c")
    row = conn.execute(query, {"c": challenge_id}).mappings().first()
    return dict(row) if row else None


def evaluated_challenge_ids(conn: Connection, among: list[str] | None = None) -> set[str]:
    """Challenges scored on the server: all of them, or those of ``among`` (one page of a listing)."""
    if among is None:
        return set(conn.execute(sa.text("SELECT challenge_id FROM exact_evaluation")).scalars())
    query = sa.text("SELECT challenge_id FROM exact_evaluation WHERE challenge_id = ANY(:ids)")
    return set(conn.execute(query, {"ids": list(among)}).scalars())


def insert_submission(conn: Connection, **values: Any) -> dict[str, Any]:
    defaults = {
        "user_id": None,
        "description": "",
        "url": "",
        "file_path": None,
        "file_size": None,
        "file_sha256": None,
        "request_key": None,
    }
    query = sa.text(
        f"""
        INSERT INTO exact_submission (challenge_id, kind, user_id, username, method_name, description, url,
                                      file_path, file_size, file_sha256, request_key, status, primary_metric)
        VALUES (:challenge_id, :kind, :user_id, :username, :method_name, :description, :url, :file_path,
                :file_size, :file_sha256, :request_key, 'queued', :primary_metric)
        RETURNING {SUBMISSION_COLUMNS}
        """
    )
    return dict(conn.execute(query, {**defaults, **values}).mappings().one())


def get_submission(conn: Connection, submission_id: int, *, with_result: bool = False) -> dict[str, Any] | None:
    columns = SUBMISSION_COLUMNS + (", result" if with_result else "")
    row = (
        conn.execute(sa.text(f"SELECT {columns} FROM exact_submission WHERE id = :id"), {"id": submission_id})
        .mappings()
        .first()
    )
    return dict(row) if row else None


def submission_for_request_key(conn: Connection, request_key: str) -> dict[str, Any] | None:
    query = sa.text(f"SELECT {SUBMISSION_COLUMNS} FROM exact_submission WHERE request_key = :k")
    row = conn.execute(query, {"k": request_key}).mappings().first()
    return dict(row) if row else None


# A chunk may be claimed when it waits, or when the worker holding it vanished (its lease expired), and its
# submission is still waiting or being scored (a failed one keeps its unfinished chunks, never claimed again).
_CLAIMABLE_CHUNK = "(c.status = 'queued' OR (c.status = 'running' AND c.lease_until < now()))"
# A submission's place in the fair queue: how many of the same submitter's submissions wait or run before it.
_PLACE = """
(SELECT count(*) FROM exact_submission o
 WHERE o.status IN ('queued', 'running') AND o.kind = q.kind
   AND COALESCE(o.user_id, -1) = COALESCE(q.user_id, -1)
   AND (o.created_at, o.id) < (q.created_at, q.id))
"""


def split_into_chunks(
    conn: Connection, *, chunk_pixels: int, whole_up_to_pixels: int, submission_id: int | None = None
) -> int:
    """Give every waiting submission without chunks its chunk rows; returns how many rows were added.

    A chunk holds about ``chunk_pixels`` pixels of samples (at least one sample); grids of at most
    ``whole_up_to_pixels`` pixels stay one chunk. A submission left 'running' without chunks (by an older
    worker that vanished) is split too. Concurrent callers are safe: the primary key makes the second a no-op.
    """
    which = "s.id = :id AND" if submission_id is not None else ""
    query = sa.text(
        f"""
        INSERT INTO exact_scoring_chunk (submission_id, chunk, first_sample, stop_sample)
        SELECT s.id, g.i, g.i * z.size, LEAST((g.i + 1) * z.size, e.n_samples)
        FROM exact_submission s
        JOIN exact_evaluation e ON e.challenge_id = s.challenge_id
        CROSS JOIN LATERAL (
            SELECT CASE WHEN e.height * e.width <= :whole THEN e.n_samples
                        ELSE GREATEST(1, :pixels / (e.height * e.width)) END AS size
        ) z
        CROSS JOIN LATERAL generate_series(0, (e.n_samples - 1) / z.size) AS g(i)
        WHERE {which} (s.status = 'queued' OR (s.status = 'running' AND s.lease_until < now()))
          AND e.n_samples > 0
          AND NOT EXISTS (SELECT 1 FROM exact_scoring_chunk c WHERE c.submission_id = s.id)
        ON CONFLICT DO NOTHING
        """
    )
    params = {"id": submission_id, "pixels": chunk_pixels, "whole": whole_up_to_pixels}
    return conn.execute(query, params).rowcount


def waiting_without_evaluation(conn: Connection) -> list[int]:
    """Waiting submissions whose challenge lost its evaluation set: they can never be split into chunks."""
    query = sa.text(
        """
        SELECT s.id FROM exact_submission s
        WHERE s.status = 'queued'
          AND NOT EXISTS (SELECT 1 FROM exact_evaluation e WHERE e.challenge_id = s.challenge_id)
        ORDER BY s.id LIMIT 100
        """
    )
    return list(conn.execute(query).scalars())


def claim_chunk(
    conn: Connection, *, worker: str, submission_id: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Mark one chunk (of this submission, or the next in the fair queue) as running for ``worker``; returns
    (chunk, submission), the submission now 'running', or None when there is nothing to claim.

    Fair across users: chunks are taken in the order of their submissions' places (the number of the same
    submitter's submissions waiting or running before it), then age, then chunk number. So every submitter's next
    job comes before anyone's second one. ``SKIP LOCKED`` lets any number of workers share the queue without ever
    scoring a chunk twice at once. Locks: the chunk row, then the submission row (the order of finish_chunk too).
    """
    which = "q.id = :id AND" if submission_id is not None else ""
    query = sa.text(
        f"""
        WITH waiting AS (
            SELECT q.id, q.created_at, {_PLACE} AS place
            FROM exact_submission q
            WHERE {which} q.status IN ('queued', 'running')
        ),
        pick AS (
            SELECT c.submission_id, c.chunk
            FROM exact_scoring_chunk c JOIN waiting w ON w.id = c.submission_id
            WHERE {_CLAIMABLE_CHUNK}
            ORDER BY w.place, w.created_at, w.id, c.chunk
            FOR UPDATE OF c SKIP LOCKED
            LIMIT 1
        )
        UPDATE exact_scoring_chunk c
        SET status = 'running', attempts = c.attempts + 1, claimed_by = :worker, started_at = now(),
            samples_done = 0, lease_until = now() + make_interval(secs => :lease)
        FROM pick
        WHERE c.submission_id = pick.submission_id AND c.chunk = pick.chunk
        RETURNING c.submission_id, c.chunk, c.first_sample, c.stop_sample, c.attempts, c.seconds
        """
    )
    chunk = (
        conn.execute(query, {"id": submission_id, "worker": worker[:200], "lease": LEASE_SECONDS}).mappings().first()
    )
    if chunk is None:
        return None
    chunk = dict(chunk)
    # The submission's lease is the latest of its chunks' (so an older worker version never takes it over).
    submission = (
        conn.execute(
            sa.text(
                f"""
                UPDATE exact_submission
                SET status = 'running', attempts = GREATEST(attempts, :attempts),
                    started_at = CASE WHEN status = 'queued' THEN now() ELSE COALESCE(started_at, now()) END,
                    lease_until = GREATEST(lease_until, now() + make_interval(secs => :lease))
                WHERE id = :id
                RETURNING {SUBMISSION_COLUMNS}
                """
            ),
            {"id": chunk["submission_id"], "attempts": chunk["attempts"], "lease": LEASE_SECONDS},
        )
        .mappings()
        .one()
    )
    return chunk, dict(submission)


def extend_chunk_lease(
    conn: Connection, submission_id: int, chunk: int, *, samples_done: int, seconds: float
) -> float | None:
    """Keep our claim on a chunk while it is scored, recording its progress and time spent.

    Returns the seconds spent on the submission's other chunks, or None when the submission is no longer being
    scored (it failed meanwhile): the caller stops.
    """
    conn.execute(
        sa.text(
            """
            UPDATE exact_scoring_chunk
            SET lease_until = now() + make_interval(secs => :lease), samples_done = :done, seconds = :seconds
            WHERE submission_id = :id AND chunk = :chunk AND status = 'running'
            """
        ),
        {"id": submission_id, "chunk": chunk, "lease": LEASE_SECONDS, "done": samples_done, "seconds": seconds},
    )
    running = conn.execute(
        sa.text(
            "UPDATE exact_submission SET lease_until = GREATEST(lease_until, now() + make_interval(secs => :lease)) "
            "WHERE id = :id AND status = 'running'"
        ),
        {"id": submission_id, "lease": LEASE_SECONDS},
    ).rowcount
    if not running:
        return None
    others = sa.text(
        "SELECT COALESCE(sum(seconds), 0) FROM exact_scoring_chunk WHERE submission_id = :id AND chunk <> :chunk"
    )
    return float(conn.execute(others, {"id": submission_id, "chunk": chunk}).scalar_one())


def finish_chunk(
    conn: Connection, submission_id: int, chunk: int, *, per_sample: dict[str, list[float | None]], seconds: float
) -> tuple[int, float] | None:
    """Store a scored chunk; returns (chunks still unfinished, seconds spent on the whole submission).

    None: nothing more to do here (the chunk was finished by another worker that took over its lease, or the
    submission is no longer being scored). The submission row stays locked to the end of the transaction, so of
    two workers finishing the last two chunks at once exactly one sees none left and assembles the result.
    """
    stored = conn.execute(
        sa.text(
            """
            UPDATE exact_scoring_chunk
            SET status = 'done', per_sample = CAST(:p AS jsonb), seconds = :seconds,
                samples_done = stop_sample - first_sample, lease_until = NULL, finished_at = now()
            WHERE submission_id = :id AND chunk = :chunk AND status <> 'done'
            """
        ),
        {"id": submission_id, "chunk": chunk, "p": json.dumps(per_sample), "seconds": seconds},
    ).rowcount
    if not stored:
        return None
    status = conn.execute(
        sa.text("SELECT status FROM exact_submission WHERE id = :id FOR UPDATE"), {"id": submission_id}
    ).scalar()
    if status != "running":
        return None
    left, spent = conn.execute(
        sa.text(
            "SELECT count(*) FILTER (WHERE status <> 'done'), COALESCE(sum(seconds), 0) "
            "FROM exact_scoring_chunk WHERE submission_id = :id"
        ),
        {"id": submission_id},
    ).one()
    return int(left), float(spent)


def chunk_results(conn: Connection, submission_id: int) -> list[dict[str, Any]]:
    """The finished chunks' sample ranges and per-sample values, in sample order."""
    query = sa.text(
        "SELECT chunk, first_sample, stop_sample, per_sample FROM exact_scoring_chunk "
        "WHERE submission_id = :id AND status = 'done' ORDER BY first_sample"
    )
    return [dict(r) for r in conn.execute(query, {"id": submission_id}).mappings()]


def scoring_progress(conn: Connection, submission_id: int) -> dict[str, Any] | None:
    """Samples scored so far (finished chunks, and the reported progress of running ones) and the total."""
    query = sa.text(
        """
        SELECT s.status, e.n_samples AS total,
               (SELECT COALESCE(sum(CASE WHEN c.status = 'done' THEN c.stop_sample - c.first_sample
                                         WHEN c.status = 'running' THEN c.samples_done ELSE 0 END), 0)
                FROM exact_scoring_chunk c WHERE c.submission_id = s.id) AS done
        FROM exact_submission s LEFT JOIN exact_evaluation e ON e.challenge_id = s.challenge_id
        WHERE s.id = :id
        """
    )
    row = conn.execute(query, {"id": submission_id}).mappings().first()
    return dict(row) if row else None


def finish(
    conn: Connection, submission_id: int, *, primary_value: float, result: dict[str, Any], score_id: int | None
) -> None:
    conn.execute(
        sa.text(
            """
            UPDATE exact_submission
            SET status = 'done', primary_value = :v, result = CAST(:r AS jsonb), score_id = :s, error = NULL,
                finished_at = now(), lease_until = NULL
            WHERE id = :id
            """
        ),
        {"id": submission_id, "v": primary_value, "r": json.dumps(result), "s": score_id},
    )
    # The assembled result now holds the per-sample values: one copy of them is enough.
    conn.execute(
        sa.text("UPDATE exact_scoring_chunk SET per_sample = NULL WHERE submission_id = :id"), {"id": submission_id}
    )


def insert_summaries(conn: Connection, submission_id: int, summaries: dict[str, dict[str, Any]], primary: str) -> None:
    """One row per split: {metric: {mean, std, n_scored, n_not_scorable}} and the primary metric's mean."""
    for split, by_metric in summaries.items():
        conn.execute(
            sa.text(
                """
                INSERT INTO exact_submission_summary (submission_id, split, primary_value, metrics)
                VALUES (:s, :split, :v, CAST(:m AS jsonb))
                ON CONFLICT (submission_id, split) DO UPDATE
                SET primary_value = EXCLUDED.primary_value, metrics = EXCLUDED.metrics
                """
            ),
            {"s": submission_id, "split": split, "v": by_metric[primary]["mean"], "m": json.dumps(by_metric)},
        )


def summaries_of(conn: Connection, submission_id: int) -> dict[str, dict[str, Any]]:
    query = sa.text("SELECT split, metrics FROM exact_submission_summary WHERE submission_id = :s")
    return {r["split"]: r["metrics"] for r in conn.execute(query, {"s": submission_id}).mappings()}


def fail(conn: Connection, submission_id: int, error: str) -> None:
    conn.execute(
        sa.text(
            "UPDATE exact_submission SET status = 'failed', error = :e, finished_at = now(), lease_until = NULL "
            "WHERE id = :id"
        ),
        {"id": submission_id, "e": error[:2000]},
    )


def list_for_user(
    conn: Connection, user_id: int, *, challenge_id: str | None = None, limit: int = 200, offset: int = 0
) -> list[dict[str, Any]]:
    """The user's submissions (newest first), with their public aggregate and any moderation."""
    query = sa.text(
        f"""
        SELECT {_ALIASED_COLUMNS}, round(pub.primary_value::numeric, :d)::float8 AS public_value,
               m.action AS moderation, m.reason AS moderation_reason
        FROM exact_submission s
        LEFT JOIN exact_submission_summary pub ON pub.submission_id = s.id AND pub.split = 'public'
        LEFT JOIN exact_moderation m ON m.score_id = s.score_id
        WHERE s.user_id = :u AND s.kind = 'participant' AND (CAST(:c AS text) IS NULL OR s.challenge_id = :c)
        ORDER BY s.created_at DESC, s.id DESC LIMIT :limit OFFSET :offset
        """
    )
    params = {"u": user_id, "c": challenge_id, "limit": limit, "offset": offset, "d": SHOWN_DECIMALS}
    return [dict(r) for r in conn.execute(query, params).mappings()]


def count_for_user(conn: Connection, user_id: int, *, challenge_id: str | None = None) -> int:
    """How many rows list_for_user pages through (index-only on exact_submission_user_idx without a challenge)."""
    return conn.execute(
        sa.text(
            "SELECT count(*) FROM exact_submission s WHERE s.user_id = :u AND s.kind = 'participant' "
            "AND (CAST(:c AS text) IS NULL OR s.challenge_id = :c)"
        ),
        {"u": user_id, "c": challenge_id},
    ).scalar_one()


def rankable_submission_ids(conn: Connection, challenge_id: str, user_id: int) -> set[int]:
    """The user's scored submissions to the challenge that are on the leaderboard (not moderated)."""
    query = sa.text(
        """
        SELECT s.id FROM exact_submission s
        WHERE s.challenge_id = :c AND s.user_id = :u AND s.kind = 'participant' AND s.status = 'done'
          AND NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = s.score_id)
        """
    )
    return set(conn.execute(query, {"c": challenge_id, "u": user_id}).scalars())


# Scored, unmoderated participant submissions with their public value (rounded: what may be shown and ranked)
# and the aggregates of the board's split. Only the small summary rows are read, never the per-sample result.
_ELIGIBLE = """
eligible AS (
    SELECT s.id, s.user_id, s.username, s.method_name, s.description, s.url, s.created_at, s.score_id,
           round(pub.primary_value::numeric, :d)::float8 AS public_value,
           round(board.primary_value::numeric, :d)::float8 AS value,
           board.metrics AS metrics
    FROM exact_submission s
    JOIN exact_submission_summary pub ON pub.submission_id = s.id AND pub.split = 'public'
    LEFT JOIN exact_submission_summary board ON board.submission_id = s.id AND board.split = :split
    WHERE s.challenge_id = :c AND s.kind = 'participant' AND s.status = 'done'
      AND NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = s.score_id)
)
"""
# Per user, the submissions that count for the private ranking: the chosen finals, else the best public one.
_CANDIDATES = """
best_public AS (
    SELECT DISTINCT ON (user_id) id, user_id FROM eligible
    ORDER BY user_id, public_value DESC NULLS LAST, created_at, id
),
chosen AS (
    SELECT e.id, e.user_id FROM exact_final_choice f
    JOIN eligible e ON e.id = f.submission_id AND e.user_id = f.user_id
    WHERE f.challenge_id = :c
),
candidates AS (
    SELECT id FROM chosen
    UNION ALL
    SELECT b.id FROM best_public b WHERE NOT EXISTS (SELECT 1 FROM chosen c WHERE c.user_id = b.user_id)
)
"""


def counts_at_the_end(conn: Connection, challenge_id: str, user_id: int, submission_id: int) -> bool:
    """Whether the submission is one of its submitter's that count for the final ranking (the chosen finals,
    else the best public one): the only ones whose private figures its submitter sees after the reveal."""
    eligible = _ELIGIBLE.replace("WHERE s.challenge_id = :c", "WHERE s.challenge_id = :c AND s.user_id = :u")
    query = sa.text(f"WITH {eligible}, {_CANDIDATES} SELECT EXISTS (SELECT 1 FROM candidates WHERE id = :sid)")
    params = {"c": challenge_id, "u": user_id, "sid": submission_id, "split": "private", "d": SHOWN_DECIMALS}
    return bool(conn.execute(query, params).scalar_one())


def ranked_submissions(
    conn: Connection, challenge_id: str, *, split: str, best_per_user: bool, finals_only: bool, limit: int | None
) -> list[dict[str, Any]]:
    """A ground-truth leaderboard: ranked on the split's rounded primary value (equal values share a rank, the
    earlier submission listed first). ``finals_only``: per user only the submissions that count at the end."""
    pool = "eligible"
    ctes = [_ELIGIBLE]
    if finals_only:
        ctes.append(_CANDIDATES)
        ctes.append("pool AS (SELECT e.* FROM eligible e JOIN candidates USING (id))")
        pool = "pool"
    if best_per_user:
        ctes.append(
            f"ranked AS (SELECT DISTINCT ON (user_id) * FROM {pool} "
            "ORDER BY user_id, value DESC NULLS LAST, created_at, id)"
        )
    else:
        ctes.append(f"ranked AS (SELECT * FROM {pool})")
    ctes.append("counts AS (SELECT user_id, count(*) AS submissions FROM eligible GROUP BY user_id)")
    query = sa.text(
        f"""
        WITH {", ".join(ctes)}
        SELECT RANK() OVER (ORDER BY r.value DESC NULLS LAST) AS rank, r.id AS submission_id, r.user_id,
               r.username, r.method_name, r.value AS score, r.metrics, r.created_at, r.score_id, c.submissions
        FROM ranked r JOIN counts c USING (user_id)
        ORDER BY r.value DESC NULLS LAST, r.created_at, r.id
        LIMIT :limit
        """
    )
    params = {"c": challenge_id, "split": split, "d": SHOWN_DECIMALS, "limit": limit}
    return [dict(r) for r in conn.execute(query, params).mappings()]


def board_progression(conn: Connection, challenge_id: str, *, split: str) -> list[dict[str, Any]]:
    """The submissions that raised the board's best (rounded) value, in time order."""
    query = sa.text(
        f"""
        WITH {_ELIGIBLE},
        running AS (
            SELECT username, value, created_at, id,
                   max(value) OVER (ORDER BY created_at, id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
            FROM eligible WHERE value IS NOT NULL
        )
        SELECT created_at, value AS best_score, username FROM running
        WHERE before IS NULL OR value > before ORDER BY created_at, id
        """
    )
    return [dict(r) for r in conn.execute(query, {"c": challenge_id, "split": split, "d": SHOWN_DECIMALS}).mappings()]


def board_histogram(conn: Connection, challenge_id: str, *, split: str, bins: int) -> list[dict[str, Any]]:
    query = sa.text(
        f"""
        WITH {_ELIGIBLE},
        bounds AS (SELECT min(value) AS lo, max(value) AS hi FROM eligible),
        binned AS (
            SELECT CASE WHEN b.hi = b.lo THEN 1 ELSE LEAST(width_bucket(e.value, b.lo, b.hi, :bins), :bins) END
                   AS bucket
            FROM eligible e CROSS JOIN bounds b WHERE e.value IS NOT NULL
        )
        SELECT bucket, count(*) AS count, (SELECT lo FROM bounds) AS lo, (SELECT hi FROM bounds) AS hi
        FROM binned GROUP BY bucket ORDER BY bucket
        """
    )
    params = {"c": challenge_id, "split": split, "d": SHOWN_DECIMALS, "bins": bins}
    return [dict(r) for r in conn.execute(query, params).mappings()]


def baselines(conn: Connection, challenge_id: str, *, split: str = "public") -> list[dict[str, Any]]:
    """The challenge's baselines with the split's rounded primary value and aggregates."""
    query = sa.text(
        """
        SELECT s.id, s.method_name, s.status, round(b.primary_value::numeric, :d)::float8 AS value,
               b.metrics AS metrics
        FROM exact_submission s
        LEFT JOIN exact_submission_summary b ON b.submission_id = s.id AND b.split = :split
        WHERE s.challenge_id = :c AND s.kind = 'baseline'
        ORDER BY b.primary_value DESC NULLS LAST, s.id
        """
    )
    return [dict(r) for r in conn.execute(query, {"c": challenge_id, "split": split, "d": SHOWN_DECIMALS}).mappings()]


def waiting_baseline_ids(conn: Connection, challenge_id: str) -> list[int]:
    query = sa.text(
        "SELECT id FROM exact_submission WHERE challenge_id = :c AND kind = 'baseline' AND status = 'queued' "
        "ORDER BY id"
    )
    return list(conn.execute(query, {"c": challenge_id}).scalars())


# --- statistics and method cards (exact/statistics.py) ---------------------------------------------------------
# Both read a given, small set of submissions of one challenge (one leaderboard page, its baselines, or the two
# methods of a comparison): the caller bounds the ids, the queries bound the rows again with LIMIT.
MAX_IDS = 200


def _bounded_ids(submission_ids: list[int]) -> list[int]:
    ids = sorted({int(i) for i in submission_ids})
    if len(ids) > MAX_IDS:
        raise ValueError(f"at most {MAX_IDS} submissions at once")
    return ids


def method_cards(conn: Connection, challenge_id: str, submission_ids: list[int]) -> list[dict[str, Any]]:
    """The public text of these submissions of the challenge: method name, description, URL, submitter; whether
    each is on the leaderboard (a scored, unmoderated participant submission, or a baseline); never the result."""
    ids = _bounded_ids(submission_ids)
    if not ids:
        return []
    query = sa.text(
        """
        SELECT s.id, s.kind, s.user_id, s.username, s.method_name, s.description, s.url, s.status, s.created_at,
               s.finished_at,
               (s.kind = 'baseline' OR (s.status = 'done'
                AND NOT EXISTS (SELECT 1 FROM exact_moderation m WHERE m.score_id = s.score_id))) AS listed
        FROM exact_submission s
        WHERE s.challenge_id = :c AND s.id = ANY(:ids)
        ORDER BY s.id
        LIMIT :limit
        """
    )
    return [dict(r) for r in conn.execute(query, {"c": challenge_id, "ids": ids, "limit": len(ids)}).mappings()]


def per_sample_values(
    conn: Connection, challenge_id: str, submission_ids: list[int], metric_names: list[str]
) -> dict[int, dict[str, Any]]:
    """The stored per-sample values of the given metrics and the split codes of these scored submissions:
    {id: {"split_codes": [...] | None, "metrics": {name: [value | None, ...]}}}. Only the asked metrics' arrays
    are read out of the stored result. For exact/statistics.py, which turns them into aggregates."""
    ids = _bounded_ids(submission_ids)
    if not ids or not metric_names:
        return {}
    query = sa.text(
        """
        SELECT s.id, s.result -> 'split_codes' AS split_codes,
               (SELECT jsonb_object_agg(e.key, e.value -> 'per_sample')
                FROM jsonb_each(s.result -> 'metrics') AS e(key, value)
                WHERE e.key = ANY(:metrics)) AS metrics
        FROM exact_submission s
        WHERE s.challenge_id = :c AND s.id = ANY(:ids) AND s.status = 'done' AND s.result IS NOT NULL
        LIMIT :limit
        """
    )
    params = {"c": challenge_id, "ids": ids, "metrics": list(metric_names), "limit": len(ids)}
    return {
        r["id"]: {"split_codes": r["split_codes"], "metrics": r["metrics"] or {}}
        for r in conn.execute(query, params).mappings()
    }
