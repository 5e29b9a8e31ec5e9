"""Parallel scoring: submissions split into chunks that several worker processes score (exact/scoring.py,
exact/worker.py, db/evaluations.py). Expected values come from scoring all samples at once with
exact.metrics.score_batch and exact.splits.summarise, not from the chunk code."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import sqlalchemy as sa

from db import evaluations as evaluations_sql
from exact import PROJECT_ROOT, evaluation_sets, intake, metrics, scoring, splits
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.errors import PermissionDenied
from exact.storage import MediaStorage, UploadedFile
from exact.worker import ScoringProcesses, ScoringWorker, WorkerConfig
from tests.conftest import make_user
from tests.polling import wait_until

N, H, W = 2000, 8, 8  # a realistic evaluation set (2,000 samples) on a grid that scores in a second
CHUNK = 160  # samples per chunk in these tests: 13 chunks, the last one of 80
TEST_CHUNKING = scoring.Chunking(chunk_pixels=CHUNK * H * W, whole_up_to_pixels=0)
N_CHUNKS = -(-N // CHUNK)
# What a worker that died leaves behind once its lease ran out.
EXPIRE_LEASE = (
    "UPDATE exact_scoring_chunk SET lease_until = now() - interval '1 second' WHERE submission_id = :i AND chunk = :c"
)


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _scalar(db, sql, **params):
    with db.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def _rows(db, sql, **params):
    with db.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def _masks(n, h, w, seed=3):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, h, w))
    for i in range(n):
        masks[i].flat[rng.choice(h * w, size=max(1, h * w // 8), replace=False)] = 1.0
    masks[5] = 0.0  # an empty mask: not scorable, must stay NaN in its chunk
    return masks


@pytest.fixture
def private(private_root):
    return MediaStorage(private_root, max_bytes=64 * 1024 * 1024)


@pytest.fixture
def big_storage(media_root):
    return MediaStorage(media_root, max_bytes=64 * 1024 * 1024)


def _challenge(db, storage, private, organiser, challenge_id, masks):
    rng = np.random.default_rng(4)
    n, h, w = masks.shape
    prepared = evaluation_sets.prepare_uploaded_evaluation(
        UploadedFile("inputs.npz", _npz(inputs=rng.normal(size=(n, h * w)))),
        UploadedFile("masks.npy", _npy(masks)),
        max_bytes=64 * 1024 * 1024,
    )
    create_challenge(
        db,
        storage,
        organiser.id,
        ChallengeForm(challenge_id.upper(), "desc", challenge_id),
        {},
        evaluation=EvaluationChoice(prepared=prepared, private=private, primary_metric="emd", shown_metrics=()),
    )
    # The queue holds only what a test submits.
    scoring.score_waiting_baselines(db, storage, private, challenge_id)


@pytest.fixture
def world(db, big_storage, private):
    organiser = make_user(db, "olivia", staff=True)
    masks = _masks(N, H, W)
    _challenge(db, big_storage, private, organiser, "par", masks)
    return {
        "organiser": organiser,
        "alice": make_user(db, "alice"),
        "bob": make_user(db, "bob"),
        "masks": masks,
        "codes": evaluation_sets.load_split_codes(evaluation_sets.get_evaluation(db, "par"), private),
    }


def _attributions(seed, n=N, h=H, w=W):
    # No all-zero map (uploads refuse them); not-scorable samples come from the empty mask of sample 5.
    return np.random.default_rng(seed).normal(size=(n, h, w))


def _submit(db, storage, user, attributions, challenge_id="par", method="m"):
    return intake.submit_attributions(
        db, storage, user.id, challenge_id, UploadedFile("a.npy", _npy(attributions)), method_name=method
    )


def _expected(attributions, masks, codes):
    """Scoring every sample at once, as before chunks existed: the stored result and the summaries per split."""
    whole = metrics.score_batch(attributions, masks)
    by_split = {
        split: {name: s.to_dict() for name, s in summaries.items()}
        for split, summaries in splits.summarise(whole, codes).items()
    }
    return {**whole.to_dict(), "split_codes": codes.tolist()}, by_split


def _stored(db, submission_id):
    result = _scalar(db, "SELECT result FROM exact_submission WHERE id = :i", i=submission_id)
    with db.connect() as conn:
        return result, evaluations_sql.summaries_of(conn, submission_id)


def test_chunked_results_equal_scoring_all_samples_at_once(db, big_storage, private, world):
    attributions = _attributions(11)
    chunked = _submit(db, big_storage, world["alice"], attributions)
    whole = _submit(db, big_storage, world["bob"], attributions)
    done = scoring.process_submission(db, big_storage, private, chunked.id, chunking=TEST_CHUNKING)
    assert done.status == "done"
    # The same data as one chunk (all 2,000 samples in one score_batch call, as before chunks existed).
    assert (
        scoring.process_submission(
            db, big_storage, private, whole.id, chunking=scoring.Chunking(whole_up_to_pixels=H * W)
        ).status
        == "done"
    )
    ranges = _rows(
        db,
        "SELECT submission_id, first_sample, stop_sample FROM exact_scoring_chunk ORDER BY submission_id, chunk",
    )
    assert [(r["first_sample"], r["stop_sample"]) for r in ranges if r["submission_id"] == chunked.id] == [
        (start, min(start + CHUNK, N)) for start in range(0, N, CHUNK)
    ]
    assert [(r["first_sample"], r["stop_sample"]) for r in ranges if r["submission_id"] == whole.id] == [(0, N)]

    expected_result, expected_summaries = _expected(attributions, world["masks"], world["codes"])
    for submission in (chunked, whole):
        result, summaries = _stored(db, submission.id)
        assert result == expected_result  # every per-sample value, NaNs (None) included, and the summaries
        assert summaries == expected_summaries
    assert result["metrics"]["emd"]["per_sample"][5] is None  # the empty mask: not scorable, NaN in its chunk
    assert sum(v is None for v in result["metrics"]["emd"]["per_sample"]) == 1
    public_mean = expected_summaries["public"]["emd"]["mean"]
    scores = _rows(db, "SELECT username, score FROM api_score WHERE challenge_id = 'par' ORDER BY username")
    assert scores == [
        {"username": "alice", "score": round(public_mean, 4)},
        {"username": "bob", "score": round(public_mean, 4)},
    ]
    # The assembled result holds the per-sample values; the chunks keep none of them.
    assert _scalar(db, "SELECT count(*) FROM exact_scoring_chunk WHERE per_sample IS NOT NULL") == 0


def _lock_waiters(db, application_name):
    return _scalar(
        db,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = :a AND wait_event_type = 'Lock'",
        a=application_name,
    )


def _connections(db, application_name):
    return _scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = :a", a=application_name)


def test_two_worker_processes_share_one_submissions_chunks(db, db_url, big_storage, private, world, media_root):
    attributions = _attributions(12)
    submission = _submit(db, big_storage, world["alice"], attributions)
    name = "exact-parallel-test"
    separator = "&" if "?" in db_url else "?"
    config = WorkerConfig(
        database_url=f"{db_url}{separator}application_name={name}",
        media_root=media_root,
        private_root=private.root,
        max_bytes=private.max_bytes,
        poll_seconds=0.05,
        chunking=TEST_CHUNKING,
    )
    pool = ScoringProcesses(config, 2)
    try:
        # Hold the submission row: each process claims a chunk (locking it) and then waits for this row, so the
        # second process must skip the first one's chunk and take another: both are seen waiting, then go on.
        with db.transaction() as conn:
            conn.execute(sa.text("SELECT 1 FROM exact_submission WHERE id = :i FOR UPDATE"), {"i": submission.id})
            pool.start()
            wait_until(lambda: _lock_waiters(db, name) == 2, "both processes to claim a chunk")
        wait_until(
            lambda: _scalar(db, "SELECT status FROM exact_submission WHERE id = :i", i=submission.id) == "done",
            "the submission to be scored",
        )
        pids = set(pool.pids)
    finally:
        pool.stop()
    assert len(pids) == 2
    claimers = _rows(
        db,
        "SELECT claimed_by, count(*) AS chunks FROM exact_scoring_chunk WHERE submission_id = :i GROUP BY claimed_by",
        i=submission.id,
    )
    assert len(claimers) == 2, claimers
    assert {int(c["claimed_by"].rsplit(":", 1)[1]) for c in claimers} == pids
    assert sum(c["chunks"] for c in claimers) == N_CHUNKS
    assert (
        _scalar(
            db, "SELECT count(*) FROM exact_scoring_chunk WHERE submission_id = :i AND attempts <> 1", i=submission.id
        )
        == 0
    )
    # Finished once: one score, one summary per split, the same figures as scoring everything at once.
    assert _scalar(db, "SELECT count(*) FROM api_score WHERE challenge_id = 'par'") == 1
    assert _scalar(db, "SELECT attempts FROM exact_submission WHERE id = :i", i=submission.id) == 1
    expected_result, expected_summaries = _expected(attributions, world["masks"], world["codes"])
    assert _stored(db, submission.id) == (expected_result, expected_summaries)
    wait_until(lambda: _connections(db, name) == 0, "the processes' connections to close with the pool")


def _split_and_claim(db, worker, submission_id):
    with db.transaction() as conn:
        evaluations_sql.split_into_chunks(
            conn,
            chunk_pixels=TEST_CHUNKING.chunk_pixels,
            whole_up_to_pixels=TEST_CHUNKING.whole_up_to_pixels,
            submission_id=submission_id,
        )
        return evaluations_sql.claim_chunk(conn, worker=worker, submission_id=submission_id)


def test_a_chunk_whose_worker_died_is_scored_again_and_nothing_is_lost(db, big_storage, private, world):
    attributions = _attributions(13)
    submission = _submit(db, big_storage, world["alice"], attributions)
    chunk, _ = _split_and_claim(db, "gone-machine:4242", submission.id)  # a worker that then died mid-chunk
    # While its lease runs, the chunk is not taken: everything else is scored, the submission waits for it.
    after = scoring.process_submission(db, big_storage, private, submission.id, chunking=TEST_CHUNKING)
    assert after.status == "running"
    assert _rows(
        db,
        "SELECT status, claimed_by FROM exact_scoring_chunk WHERE submission_id = :i AND status <> 'done'",
        i=submission.id,
    ) == [{"status": "running", "claimed_by": "gone-machine:4242"}]
    assert scoring.progress(db, world["alice"].id, submission.id) == (
        N - (chunk["stop_sample"] - chunk["first_sample"]),
        N,
    )
    with db.transaction() as conn:  # its lease expires
        conn.execute(
            sa.text(EXPIRE_LEASE),
            {"i": submission.id, "c": chunk["chunk"]},
        )
    worker = ScoringWorker(db, big_storage, private, chunking=TEST_CHUNKING)
    assert worker.run_once()
    assert not worker.run_once()
    taken_over = _rows(
        db,
        "SELECT attempts, claimed_by FROM exact_scoring_chunk WHERE submission_id = :i AND chunk = :c",
        i=submission.id,
        c=chunk["chunk"],
    )
    assert taken_over == [{"attempts": 2, "claimed_by": scoring.worker_name()}]
    assert _stored(db, submission.id) == _expected(attributions, world["masks"], world["codes"])
    assert _scalar(db, "SELECT count(*) FROM api_score WHERE challenge_id = 'par'") == 1


def test_a_chunk_interrupted_again_and_again_fails_the_submission(db, big_storage, private, world):
    submission = _submit(db, big_storage, world["alice"], _attributions(14))
    for attempt in range(1, scoring.MAX_ATTEMPTS + 1):
        chunk, _ = _split_and_claim(db, f"crashing:{attempt}", submission.id)
        assert (chunk["chunk"], chunk["attempts"]) == (0, attempt)
        with db.transaction() as conn:
            conn.execute(
                sa.text(EXPIRE_LEASE),
                {"i": submission.id, "c": 0},
            )
    failed = scoring.process_submission(db, big_storage, private, submission.id, chunking=TEST_CHUNKING)
    assert failed.status == "failed" and failed.error == "Scoring was interrupted repeatedly; please submit again."
    assert _scalar(db, "SELECT count(*) FROM api_score WHERE challenge_id = 'par'") == 0
    assert ScoringWorker(db, big_storage, private, chunking=TEST_CHUNKING).run_once() is False  # nothing left to claim


def test_the_time_budget_counts_every_chunk_of_a_submission(db, big_storage, private, world):
    submission = _submit(db, big_storage, world["alice"], _attributions(15))
    worker = ScoringWorker(db, big_storage, private, chunking=TEST_CHUNKING, time_budget=100)
    for _ in range(3):
        assert worker.run_once()
    # Say the three scored chunks took 40 s each (a slow machine): each is under the budget of 100 s, together
    # they are over it, so the next chunk to finish fails the submission.
    with db.transaction() as conn:
        conn.execute(
            sa.text("UPDATE exact_scoring_chunk SET seconds = 40 WHERE submission_id = :i AND status = 'done'"),
            {"i": submission.id},
        )
    assert worker.run_once()
    failed = intake.get_submission_row(db, submission.id)
    assert failed.status == "failed"
    assert failed.error == (
        "Scoring took longer than this server's budget of 100 s per submission and was stopped after "
        f"{4 * CHUNK} of {N} samples. Sparser attributions score faster."
    )
    assert not worker.run_once(), "the rest of a failed submission is never claimed"
    assert (
        _scalar(
            db, "SELECT count(*) FROM exact_scoring_chunk WHERE submission_id = :i AND status = 'done'", i=submission.id
        )
        == 3
    )
    assert _scalar(db, "SELECT count(*) FROM api_score WHERE challenge_id = 'par'") == 0
    assert _scalar(db, "SELECT count(*) FROM exact_submission_summary WHERE submission_id = :i", i=submission.id) == 0


def test_progress_counts_samples_from_0_to_n_for_the_submitter_and_organisers_only(db, big_storage, private, world):
    submission = _submit(db, big_storage, world["alice"], _attributions(16))
    alice, organiser = world["alice"].id, world["organiser"].id
    assert scoring.progress(db, alice, submission.id) == (0, N)
    for outsider in (None, world["bob"].id):
        with pytest.raises(PermissionDenied):
            scoring.progress(db, outsider, submission.id)
    worker = ScoringWorker(db, big_storage, private, chunking=TEST_CHUNKING)
    seen = [scoring.progress(db, organiser, submission.id)]
    while worker.run_once():
        seen.append(scoring.progress(db, alice, submission.id))
    assert seen == [(min(k * CHUNK, N), N) for k in range(N_CHUNKS + 1)]
    # Scored in this process while the submitter waits: the callback also runs over all samples, 0 to N.
    again = _submit(db, big_storage, world["bob"], _attributions(17))
    reported = []
    scoring.process_submission(
        db, big_storage, private, again.id, chunking=TEST_CHUNKING, progress=lambda d, t: reported.append((d, t))
    )
    assert reported[0] == (0, N) and reported[-1] == (N, N)
    assert {t for _, t in reported} == {N}
    assert [d for d, _ in reported] == sorted(d for d, _ in reported)
    assert {k * CHUNK for k in range(1, N_CHUNKS)} <= {d for d, _ in reported}  # every chunk's end


def test_chunks_are_claimed_fairly_across_users(db, big_storage, private, world):
    """Alice's three submissions, then Bob's one: Bob's chunks all come right after Alice's first submission."""
    alice = [_submit(db, big_storage, world["alice"], _attributions(20 + i), method=f"a{i}").id for i in range(3)]
    bob = _submit(db, big_storage, world["bob"], _attributions(30), method="b0").id
    order = []
    while (claimed := _split_and_claim(db, "fairness", None)) is not None:
        chunk, submission = claimed
        order.append((submission["id"], chunk["chunk"]))
    expected_submissions = [alice[0], bob, alice[1], alice[2]]
    assert order == [(sid, index) for sid in expected_submissions for index in range(N_CHUNKS)]


def test_the_worker_command_starts_the_processes_asked_for_and_stops_on_sigterm(
    db, db_url, big_storage, private, world, media_root, tmp_path
):
    jobs = [_submit(db, big_storage, world[who], _attributions(40 + i)).id for i, who in enumerate(("alice", "bob"))]
    name = "exact-worker-command-test"
    separator = "&" if "?" in db_url else "?"
    env = {
        **os.environ,
        "DATABASE_URL": f"{db_url}{separator}application_name={name}",
        "EXACT_DATA_DIR": str(tmp_path / "worker-data"),
        "EXACT_MEDIA_ROOT": str(media_root),
        "EXACT_PRIVATE_ROOT": str(private.root),
        "EXACT_MAX_UPLOAD_MB": "64",
        "EXACT_SCORING_PROCESSES": "1",  # overridden by --processes
    }
    command = [sys.executable, "-m", "exact", "worker", "--processes", "3"]
    worker = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # Three scorers and, since the optional PyTorch extra is installed, one training process.
        wait_until(lambda: _connections(db, name) == 4, "three scoring processes and the trainer to connect")
        done = "SELECT count(*) FROM exact_submission WHERE id = ANY(:ids) AND status = 'done'"
        wait_until(lambda: _scalar(db, done, ids=jobs) == 2, "both submissions to be scored")
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, output.decode()
    assert "Scoring worker running (3 processes, 1 training)" in output.decode()
    wait_until(lambda: _connections(db, name) == 0, "the processes' connections to close")
    assert _scalar(db, "SELECT count(*) FROM api_score WHERE challenge_id = 'par'") == 2
