"""Attacks on the HTTP API (docs/api.md; docs/security.md, "What leaves the server"), each performed for real over
HTTP (httpx, or a raw socket where httpx would refuse to send the request) against a running server.py.

Servers: the module server of tests/api/conftest.py (``api_server``: scoring worker on, 2 MB uploads, a huge rate
limit), a quiet one (no scoring worker, at most two waiting submissions per user) for the queue limit, a stingy one
(five requests a minute) for the rate limits, and one whose database does not exist for the outage answers.

Every test asserts that the attack fails; a test that fails therefore reports a weakness. Each refusal is also
checked for internals (traceback, SQL, server paths, tokens) in its body.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import io
import json
import os
import pickle
import re
import secrets
import socket
import struct
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from db.database import Database
from db.schema import apply_schema
from exact import evaluation_sets, scoring
from exact.arrays import validate_submitted_attributions
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.competition import Rules, choose_finals, publish_private_board, update_rules
from exact.errors import ValidationError
from exact.evaluation_sets import BASELINES, get_evaluation, load_masks, load_split_codes
from exact.metrics import score_batch
from exact.storage import MediaStorage, UploadedFile
from exact.xaitris import BenchmarkSpec
from tests.api import conftest as api_fixtures
from tests.api.conftest import bearer, token_for
from tests.api.test_api import MAX_BYTES, gt_challenge, npy, score_challenge
from tests.conftest import make_user
from tests.live_server import REPO_ROOT, LiveApp, _start_app
from tests.polling import wait_until

# The module server and its client (tests/api/conftest.py), made fixtures of this module too.
api_server = api_fixtures.api_server
api = api_fixtures.api

DEV, PUBLIC, PRIVATE = 0, 1, 2  # the split codes of exact.splits
TOKEN_RE = re.compile(r"exact_[A-Za-z0-9_-]{20,}")
INTERNALS = (
    "Traceback",
    'File "',
    "sqlalchemy",
    "psycopg",
    "[SQL",
    "SELECT ",
    "INSERT INTO",
    "UPDATE ",
    "site-packages",
    "postgresql://",
    str(REPO_ROOT),
)


# --- helpers ------------------------------------------------------------------------------------------------------


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def assert_clean(app: LiveApp, response: httpx.Response, *secret_texts: str) -> None:
    """No traceback, SQL, server path or token in an answer."""
    text = response.text
    markers = [*INTERNALS, str(app.media_root), str(app.private_root), str(app.data_dir), *secret_texts]
    leaked = [m for m in markers if m and m in text]
    assert not leaked, f"the answer shows {leaked}: {text[:600]}"
    assert not TOKEN_RE.search(text), f"the answer shows a token: {text[:600]}"


def refused(app: LiveApp, response: httpx.Response, *statuses: int, secret_texts: tuple[str, ...] = ()) -> dict:
    """A problem+json refusal with one of ``statuses`` that shows no internals."""
    assert response.status_code in statuses, (response.status_code, response.text[:600])
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == response.status_code and body["title"] and body["detail"], body
    assert_clean(app, response, *secret_texts)
    return body


def assert_healthy(app: LiveApp) -> None:
    assert app.process.poll() is None, "the server process has exited"
    response = httpx.get(f"{app.url}/api/v1/health", timeout=30)
    assert response.status_code == 200 and response.json()["status"] == "ok", response.text


def count(app: LiveApp, sql: str, **params) -> int:
    with app.db.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def submissions_of(app: LiveApp, challenge_id: str) -> int:
    return count(app, "SELECT count(*) FROM exact_submission WHERE challenge_id = :c AND kind = 'participant'",
                 c=challenge_id)  # fmt: skip


def media_files(app: LiveApp) -> list[str]:
    return sorted(p.relative_to(app.media_root).as_posix() for p in app.media_root.rglob("*") if p.is_file())


def shape_of(api: httpx.Client, challenge_id: str) -> tuple[int, int, int]:
    return tuple(api.get(f"/challenges/{challenge_id}").json()["evaluation"]["shape"])  # type: ignore[return-value]


def upload(api: httpx.Client, headers, challenge_id: str, content: bytes | np.ndarray, *, name: str = "a.npy",
           method: str = "probe", key: str | None = None, extra: dict | None = None) -> httpx.Response:  # fmt: skip
    data = {"method_name": method, **(extra or {})}
    if key is not None:
        data["request_key"] = key
    payload = npy(content) if isinstance(content, np.ndarray) else content
    return api.post(f"/challenges/{challenge_id}/submissions", headers=headers, data=data,
                    files={"file": (name, payload)})  # fmt: skip


def wait_scored(api: httpx.Client, headers, submission_id: int) -> dict:
    seen: list[dict] = []

    def finished() -> bool:
        seen.append(api.get(f"/submissions/{submission_id}", headers=headers).json())
        return seen[-1].get("status") in ("done", "failed")

    wait_until(finished, f"the server to score submission {submission_id}")
    return seen[-1]


def truth(app: LiveApp, challenge_id: str) -> tuple[np.ndarray, np.ndarray]:
    """What only the server knows: the masks and the split code of every sample."""
    evaluation = get_evaluation(app.db, challenge_id)
    private = MediaStorage(app.private_root, max_bytes=MAX_BYTES)
    return load_masks(evaluation, private), load_split_codes(evaluation, private)


def summary_row(result: dict, split: str, metric: str) -> dict:
    return next(r for r in result["summary"] if r["split"] == split and r["metric"] == metric)


def at_most_4_decimals(value: float) -> bool:
    return abs(value * 1e4 - round(value * 1e4)) < 1e-6


def rigid_challenge(app: LiveApp, *, rules: Rules | None = None, n_samples: int = 200) -> tuple[str, object]:
    """An 8×8 rigid XAI-TRIS challenge (the pattern's position varies per sample: the masks are really secret)."""
    organiser = make_user(app.db, _name("org"), staff=True)
    challenge_id = _name("rigid-")
    media = MediaStorage(app.media_root, max_bytes=MAX_BYTES)
    private = MediaStorage(app.private_root, max_bytes=MAX_BYTES)
    spec = BenchmarkSpec(scenario="rigid", size=8, n_samples=n_samples, seed=evaluation_sets.secret_seed())
    create_challenge(
        app.db, media, organiser.id, ChallengeForm("Rigid", "Find them.", challenge_id), {},
        evaluation=EvaluationChoice(prepared=evaluation_sets.prepare_benchmark(spec), private=private,
                                    primary_metric="emd", shown_metrics=("mass",)),
        rules=rules,
    )  # fmt: skip
    scoring.score_waiting_baselines(app.db, media, private, challenge_id)
    return challenge_id, organiser


def isolating(shape: tuple[int, int, int], sample: int, values: np.ndarray | float = 1.0) -> np.ndarray:
    """Attributions that are zero on every sample but one (refused at upload since the all-zero rule)."""
    attributions = np.zeros(shape)
    attributions[sample] = values
    return attributions


def bump_probe(shape: tuple[int, int, int], sample: int, bump: np.ndarray | float = 1.0, *,
               background: float = 1.0) -> np.ndarray:  # fmt: skip
    """What the all-zero rule leaves of ``isolating``: a constant map on every sample (scorable, so accepted and
    in every split's mean) with ``bump`` added on one sample, the only one whose values differ between probes."""
    attributions = np.full(shape, background, dtype=np.float64)
    attributions[sample] += bump
    return attributions


BITS = 13  # pixels per probe: weights 2^0 … 2^12, one bit each (4 decimals distinguish 10^4 > 2^13 levels)


def pixel_groups(n_pixels: int) -> list[np.ndarray]:
    return [np.arange(start, min(start + BITS, n_pixels)) for start in range(0, n_pixels, BITS)]


def bit_weights(h: int, w: int, pixels: np.ndarray) -> np.ndarray:
    weights = np.zeros(h * w)
    weights[pixels] = 2.0 ** np.arange(len(pixels))
    return weights.reshape(h, w)


def decode_group(mass_change: float, inside: int, n_pixels: int, pixels: np.ndarray) -> np.ndarray:
    """Sample j's mask on ``pixels`` from how much j's mass moved between the constant map 1 (mass inside /
    n_pixels) and the same map plus ``bit_weights`` on ``pixels`` (mass (inside + W) / (n_pixels + 2^b - 1), W the
    sum of the weights that fall inside the mask): W's binary digits are the mask pixels. ``inside``: the number of
    mask pixels of j (rigid patterns all have the same, which the published development masks show)."""
    top = 2 ** len(pixels) - 1
    code = int(np.clip(round((mass_change + inside / n_pixels) * (n_pixels + top) - inside), 0, top))
    return np.array([(code >> bit) & 1 == 1 for bit in range(len(pixels))])


def consistent_codes(shown: float, exact_baseline: float, inside: int, n_pixels: int, n_split: int,
                     pixels: np.ndarray) -> list[int]:  # fmt: skip
    """Every code W (the sum of the bit weights inside j's mask, see ``decode_group``) whose probe would have been
    shown as ``shown``, given the exact baseline mean (more than an attacker knows). One code: the figure pins
    those pixels of j down; several: it does not."""
    top = 2 ** len(pixels) - 1
    candidates = np.arange(top + 1)
    means = exact_baseline + ((inside + candidates) / (n_pixels + top) - inside / n_pixels) / n_split
    return [int(c) for c, mean in zip(candidates, means, strict=True) if round(float(mean), 4) == shown]


def split_mean(attributions: np.ndarray, masks: np.ndarray, codes: np.ndarray, split: int, metric: str) -> float:
    """The exact (unrounded) mean the server computes for a split, from the truth: the attacker never sees it."""
    values = score_batch(attributions, masks, metrics=[metric]).per_sample[metric]
    return float(np.nanmean(values[codes == split]))


def mask_size_from_development(api: httpx.Client, challenge_id: str) -> int:
    """The number of mask pixels per sample, read from the published development masks (constant on rigid sets)."""
    files = api.get(f"/challenges/{challenge_id}").json()["files"]
    path = next(f["download_path"] for f in files if f["kind"] == "evaluation-inputs").removeprefix("/api/v1")
    with np.load(io.BytesIO(api.get(path).content), allow_pickle=False) as archive:
        sizes = np.unique((archive["development_masks"] > 0).reshape(len(archive["development_masks"]), -1).sum(1))
    assert len(sizes) == 1, sizes
    return int(sizes[0])


def scored_upload(api: httpx.Client, headers, challenge_id: str, attributions: np.ndarray, method: str) -> dict:
    """Upload, wait for the score (one at a time: EXACT_MAX_QUEUED_PER_USER), and return the finished result."""
    posted = upload(api, headers, challenge_id, attributions, method=method)
    assert posted.status_code == 202, posted.text
    result = wait_scored(api, headers, posted.json()["id"])
    assert result["status"] == "done" and result["error"] is None, result
    return result


def refused_as_all_zeros(app: LiveApp, response: httpx.Response, attributions: np.ndarray) -> str:
    """The all-zero rule's 422, with exactly the message the file alone gives (so it says nothing about masks)."""
    detail = refused(app, response, 422)["detail"]
    with pytest.raises(ValidationError) as expected:
        validate_submitted_attributions(attributions, attributions.shape)
    assert "all zeros" in detail and detail == str(expected.value), detail
    return detail


def expected_counts(masks: np.ndarray, codes: np.ndarray, split: int, metric: str) -> tuple[int, int]:
    """(scored, not scorable) of a split for any accepted upload: fixed by the evaluation set alone (empty masks,
    and for auc masks covering every pixel)."""
    inside = (masks > 0).reshape(len(masks), -1).sum(axis=1)
    scorable = (inside > 0) & (inside < masks[0].size if metric == "auc" else True)
    members = codes == split
    return int((scorable & members).sum()), int((~scorable & members).sum())


def raw_http(app: LiveApp, request: bytes, *, timeout: float = 20, source: str | None = None) -> bytes:
    """Send raw bytes, return what the server answers (up to the end of the first answer or the timeout).
    ``source``: the loopback address to connect from (its own per-address buckets)."""
    url = urlparse(app.url)
    received = b""
    source_address = (source, 0) if source else None
    with socket.create_connection((url.hostname, url.port), timeout=timeout, source_address=source_address) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before it has read everything
            sock.sendall(request)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                data = sock.recv(65536)
                if not data:
                    break
                received += data
                head, sep, body = received.partition(b"\r\n\r\n")
                match = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
                if sep and match and len(body) >= int(match.group(1)):
                    break
        except (TimeoutError, OSError):
            pass
    return received


def raw_clean(app: LiveApp, answer: bytes) -> None:
    text = answer.decode(errors="replace")
    leaked = [m for m in (*INTERNALS, str(app.media_root), str(app.private_root)) if m in text]
    assert not leaked and not TOKEN_RE.search(text), text[:600]


def raw_answer(answer: bytes) -> tuple[int, dict[str, str], dict]:
    """Status, headers (lower-case names) and JSON body of a raw HTTP/1.1 answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


# --- servers of this module -----------------------------------------------------------------------------------------


def _server(scratch_databases, tmp_path_factory, name: str, env: dict[str, str]) -> LiveApp:
    db_url = scratch_databases.create(f"exact_{name}")
    database = Database(db_url, pool_size=1, max_overflow=1)
    try:
        apply_schema(database)
    finally:
        database.dispose()
    return _start_app(db_url, tmp_path_factory.mktemp(name), env)


@pytest.fixture(scope="module")
def quiet_server(scratch_databases, tmp_path_factory) -> Iterator[LiveApp]:
    """Nothing is scored here (no worker): uploads stay queued, so the per-user queue limit (2) is what binds."""
    app = _server(scratch_databases, tmp_path_factory, "api_quiet", {
        "EXACT_WORKER": "off", "EXACT_MAX_QUEUED_PER_USER": "2", "EXACT_API_RATE_PER_MINUTE": "100000",
        "EXACT_MAX_UPLOAD_MB": "2",
    })  # fmt: skip
    yield app
    app.stop()


STINGY_RATE = 5


@pytest.fixture(scope="module")
def stingy_server(scratch_databases, tmp_path_factory) -> Iterator[LiveApp]:
    app = _server(scratch_databases, tmp_path_factory, "api_stingy",
                  {"EXACT_WORKER": "off", "EXACT_API_RATE_PER_MINUTE": str(STINGY_RATE)})  # fmt: skip
    yield app
    app.stop()


def client_from(app: LiveApp, local_address: str) -> httpx.Client:
    """A client whose connections come from another loopback address (each has its own per-address bucket)."""
    return httpx.Client(base_url=f"{app.url}/api/v1", timeout=30,
                        transport=httpx.HTTPTransport(local_address=local_address))  # fmt: skip


# === 1. recovering the hidden ground truth through the API ============================================================


def test_scripted_single_pixel_probes_get_only_rounded_public_aggregates(api: httpx.Client, api_server: LiveApp):
    """One-hot attributions on single pixels (the start of a mask-recovery script): the answer to the upload, the
    result, the submission list and the leaderboard show rounded aggregates of the development and public parts
    only, per-sample values of development samples only, and a bare progress count."""
    challenge_id, _ = gt_challenge(api_server)
    mallory = make_user(api_server.db, _name("mallory"))
    headers = bearer(token_for(api_server, mallory))
    shape = shape_of(api, challenge_id)
    _, codes = truth(api_server, challenge_id)
    development = set(np.flatnonzero(codes == DEV).tolist())
    results = []
    for pixel in (0, 27, 63):
        attributions = np.zeros((shape[0], shape[1] * shape[2]))
        attributions[:, pixel] = 1.0
        posted = upload(api, headers, challenge_id, attributions.reshape(shape), method=f"pixel {pixel}")
        assert posted.status_code == 202, posted.text
        answer = posted.json()
        assert answer["status"] == "queued" and answer["public_value"] is None  # nothing computed yet
        assert not {"summary", "per_sample", "result", "progress", "file_path"} & set(answer)
        results.append(wait_scored(api, headers, answer["id"]))
    for result in results:
        assert result["status"] == "done", result
        assert {r["split"] for r in result["summary"]} == {"development", "public"}  # no private part
        assert set(result["progress"]) == {"done", "total"} and result["progress"]["done"] == shape[0]
        assert {r["split"] for r in result["per_sample"]} == {"development"}
        assert {r["sample"] for r in result["per_sample"]} <= development
        figures = [v for r in result["summary"] for v in (r["mean"], r["std"]) if v is not None]
        assert figures and all(at_most_4_decimals(v) for v in figures), figures
        assert result["public_value"] == summary_row(result, "public", "emd")["mean"]
    mine = api.get("/me/submissions", headers=headers, params={"challenge_id": challenge_id}).json()
    assert mine["total"] == 3
    for item in mine["items"]:
        assert not {"summary", "per_sample", "result"} & set(item)
        assert item["public_value"] is None or at_most_4_decimals(item["public_value"])
    for show_all in ("false", "true"):
        board = api.get(f"/challenges/{challenge_id}/leaderboard", params={"show_all": show_all}).json()
        assert board["board"] == "public"
        for row in board["rows"] + board["baselines"]:
            assert all(at_most_4_decimals(v) for k, v in row.items() if k in ("score", "vs_random", "mass")
                       and v is not None), row  # fmt: skip
        table = api.get(f"/challenges/{challenge_id}/leaderboard.csv", params={"show_all": show_all}).text
        for row in csv.DictReader(io.StringIO(table)):
            assert all(at_most_4_decimals(float(row[c])) for c in ("score", "vs_random", "mass") if row[c])
    refused(api_server, api.get(f"/challenges/{challenge_id}/leaderboard", params={"board": "private"}), 422)
    refused(api_server, api.get(f"/challenges/{challenge_id}/leaderboard.csv", params={"board": "private"}), 422)


def test_an_isolated_public_sample_does_not_give_away_its_mask(api: httpx.Client, api_server: LiveApp):
    """The differencing attack. Zero attributions used to be 'not scorable' and left out of the public mean, so an
    upload zero on every sample but one public sample j made the public 'aggregate' j's own value: with 2^k weights
    on 13 pixels of j, the rounded public mass mean encoded 13 mask pixels exactly, and five uploads recovered j's
    secret 8×8 mask (rigid benchmark: the pattern's position is secret).

    The defence: an upload with an all-zero map is refused (exact.arrays.validate_submitted_attributions), so every
    public mean is over the whole public split. The strongest remaining form of the attack is differencing: a
    constant baseline, and probes equal to it except for the 2^k weights on j. Only j's value differs, so
    (probe mean - baseline mean) × n_public is the change of j's mass, which would decode the 13 bits as before,
    but each mean is rounded to 4 decimals over the n_public samples: the rounding error, times n_public and
    times the probe's map sum (64 + 8191) on j, swamps the low bits.

    Fails if the defence goes: the isolating upload is accepted (202, a row, a file), or the public mean is shown
    unrounded or over fewer than the whole split (then the decoding below recovers the mask, as the control with
    the exact means shows), or `scored` moves with the upload."""
    challenge_id, _ = rigid_challenge(api_server)
    mallory = make_user(api_server.db, _name("mallory"))
    headers = bearer(token_for(api_server, mallory))
    evaluation = api.get(f"/challenges/{challenge_id}").json()["evaluation"]
    shape = tuple(evaluation["shape"])
    n, h, w = shape
    n_public = evaluation["split_sizes"]["public"]  # public: the attacker knows how many samples a mean is over
    masks, codes = truth(api_server, challenge_id)
    target = int(np.flatnonzero(codes == PUBLIC)[0])  # an attacker finds one: the public mean moves (next test)
    groups = pixel_groups(h * w)

    # 1. The isolating upload is refused before anything is stored.
    files_before = media_files(api_server)
    isolated = isolating(shape, target, bit_weights(h, w, groups[0]))
    refused_as_all_zeros(api_server, upload(api, headers, challenge_id, isolated, method="isolated"), isolated)
    assert count(api_server, "SELECT count(*) FROM exact_submission WHERE user_id = :u", u=mallory.id) == 0
    assert media_files(api_server) == files_before

    # 2. Differencing: a constant baseline, then one probe per 13 pixels (six uploads, each scored before the next).
    inside = mask_size_from_development(api, challenge_id)
    baseline = np.ones(shape)
    probes = [bump_probe(shape, target, bit_weights(h, w, pixels)) for pixels in groups]
    answers = [
        scored_upload(api, headers, challenge_id, a, f"differencing {i}") for i, a in enumerate([baseline, *probes])
    ]
    rows = [summary_row(answer, "public", "mass") for answer in answers]
    expected = expected_counts(masks, codes, PUBLIC, "mass")
    assert {(r["scored"], r["not_scorable"]) for r in rows} == {expected}, rows  # a constant of the evaluation set
    assert expected[0] == n_public  # rigid masks are never empty: every mean is over the whole public split
    assert all(at_most_4_decimals(r["mean"]) for r in rows), rows
    exact_means = [split_mean(a, masks, codes, PUBLIC, "mass") for a in (baseline, *probes)]
    assert all(abs(r["mean"] - m) <= 0.5e-4 + 1e-12 for r, m in zip(rows, exact_means, strict=True))

    def decode(means: list[float]) -> np.ndarray:
        decoded = np.zeros(h * w, dtype=bool)
        for pixels, mean in zip(groups, means[1:], strict=True):
            decoded[pixels] = decode_group((mean - means[0]) * n_public, inside, h * w, pixels)
        return decoded

    actual = masks[target].reshape(-1) > 0
    # The control: on the exact means the same decoding recovers the mask, so the attack itself is sound and only
    # the rounding of a mean over the whole split stands in its way.
    assert np.array_equal(decode(exact_means), actual)
    # What is shown: for each probe, every 13-bit code that would have been shown the same. The rounding error
    # (up to 0.5e-4, times n_public, times the map sum 64 + 8191 on j) spans several codes, so no probe pins its 13
    # pixels down. (Whether the plain decoding happens to land on the right code is luck, not knowledge: with 9
    # public samples it does for a whole mask about once in 50 evaluation sets, so that is not asserted.)
    decoded = decode([r["mean"] for r in rows])
    ambiguity = []
    for pixels, row in zip(groups, rows[1:], strict=True):
        true_code = int(bit_weights(h, w, pixels).reshape(-1)[actual].sum())
        candidates = consistent_codes(row["mean"], exact_means[0], inside, h * w, n_public, pixels)
        assert true_code in candidates, (true_code, candidates)
        ambiguity.append(len(candidates))
    assert min(ambiguity) > 1, (
        f"VULNERABLE: the rounded public mass means {[r['mean'] for r in rows]} over {n_public} samples pin down "
        f"13 pixels of public sample {target}'s secret mask per upload (codes consistent per probe: {ambiguity}; "
        f"plain decoding recovered the whole mask: {np.array_equal(decoded, actual)})"
    )
    # What remains (docs/security.md, threat model): each probe still narrows j's 13 pixels to a few codes, about
    # 10 bits, and an attacker who also uses what rigid patterns look like (4-pixel tetrominoes, from the training
    # masks) needs only about three probes with random weights per public sample. That is the leaderboard-probing
    # channel the submission limits bound; it reaches public samples only, never the private ranking's.


def test_scored_counts_do_not_reveal_which_samples_are_private(api: httpx.Client, api_server: LiveApp):
    """The split assignment (development / public / private) is kept in the private masks file; only the
    development indices are published. Probing a non-development sample j with an upload non-zero on j alone used
    to make the public summary's 'scored' count say whether j is public (1) or private (0).

    Now: the isolating probe is refused, with a message computed from the file alone (the same whatever j's
    split), and the closest accepted probe, a constant map everywhere (the smallest positive double, as near to
    zero as a map may be) with a bump on j, gets `scored` / `not_scorable` counts that are constants of the
    evaluation set, identical for every probe. Fails if all-zero maps are accepted again (the 422 below), or if
    anything an upload holds changes which samples a summary is over."""
    challenge_id, _ = gt_challenge(api_server)
    mallory = make_user(api_server.db, _name("mallory"))
    headers = bearer(token_for(api_server, mallory))
    shape = shape_of(api, challenge_id)
    masks, codes = truth(api_server, challenge_id)
    probes = [*np.flatnonzero(codes == PUBLIC)[:2].tolist(), *np.flatnonzero(codes == PRIVATE)[:2].tolist()]
    files_before = media_files(api_server)
    for sample in probes:
        isolated = isolating(shape, sample)
        response = upload(api, headers, challenge_id, isolated, method=f"which split is {sample}")
        refused_as_all_zeros(api_server, response, isolated)
    assert submissions_of(api_server, challenge_id) == 0 and media_files(api_server) == files_before
    tiny = float(np.nextafter(0.0, 1.0))  # 5e-324: accepted, and scorable like any constant map
    bump = np.random.default_rng(12).random(shape[1:]) + 0.1
    counts = {}
    for sample in probes:
        result = scored_upload(api, headers, challenge_id, bump_probe(shape, sample, bump, background=tiny),
                               f"which split is {sample}")  # fmt: skip
        assert {r["split"] for r in result["summary"]} == {"development", "public"}, result["summary"]
        counts[sample] = {(r["split"], r["metric"]): (r["scored"], r["not_scorable"]) for r in result["summary"]}
    fixed = {
        (split, metric): expected_counts(masks, codes, code, metric)
        for split, code in (("development", DEV), ("public", PUBLIC))
        for metric in {metric for _, metric in counts[probes[0]]}
    }
    assert all(seen == fixed for seen in counts.values()), (
        f"VULNERABLE: the summaries' scored / not-scorable counts moved with the probed sample (public "
        f"{probes[:2]}, private {probes[2:]}): {counts}; the evaluation set fixes them at {fixed}"
    )
    # Not asserted: the public *mean* still moves when j is public and stays put when j is private. That is the
    # inherent leaderboard-probing channel (docs/security.md, threat model): bounded by the rounding to 4 decimals
    # and the submission limits, and it tells the split of one sample (or a few) per upload.


def test_the_success_of_an_upload_says_nothing_about_a_private_mask(api: httpx.Client, api_server: LiveApp):
    """Before the end nothing computed from private samples may reach a participant. An upload used to be marked
    failed ('No sample could be scored') when no sample at all was scorable, private ones included: non-zero on
    one private sample alone, it failed exactly when that private mask was empty, and failed uploads did not count
    against the limits, so the probe was free.

    Now the isolating probe is refused at upload, from the file alone: on an empty and on a filled private mask
    the same 422 (the same message but for the listed sample numbers, which are the file's), nothing stored, no
    submission counted. The closest accepted probes (constant maps with a bump on the private sample) both end
    'done' with the same visible result, and count. Fails if all-zero maps are accepted again, or if the status,
    error or any visible figure of an upload depends on a private mask."""
    organiser = make_user(api_server.db, _name("org"), staff=True)
    challenge_id = _name("sparse-")
    rng = np.random.default_rng(11)
    n, h, w = 40, 8, 8
    masks = np.zeros((n, h, w))
    for i in range(0, n, 2):  # every other mask is empty (an organiser's real data may have such samples)
        masks[i].flat[rng.choice(h * w, size=5, replace=False)] = 1.0
    buffer = io.BytesIO()
    np.savez(buffer, inputs=rng.normal(size=(n, h, w)))
    prepared = evaluation_sets.prepare_uploaded_evaluation(
        UploadedFile("inputs.npz", buffer.getvalue()), UploadedFile("masks.npy", npy(masks)), max_bytes=MAX_BYTES
    )
    media = MediaStorage(api_server.media_root, max_bytes=MAX_BYTES)
    private = MediaStorage(api_server.private_root, max_bytes=MAX_BYTES)
    create_challenge(
        api_server.db, media, organiser.id, ChallengeForm("Sparse", "Some masks are empty.", challenge_id), {},
        evaluation=EvaluationChoice(prepared=prepared, private=private, primary_metric="mass"),
        rules=Rules(daily_limit=5),
    )  # fmt: skip
    scoring.score_waiting_baselines(api_server.db, media, private, challenge_id)
    _, codes = truth(api_server, challenge_id)
    empty = next(i for i in range(n) if codes[i] == PRIVATE and not masks[i].any())
    filled = next(i for i in range(n) if codes[i] == PRIVATE and masks[i].any())
    mallory = make_user(api_server.db, _name("mallory"))
    headers = bearer(token_for(api_server, mallory))

    def today_left() -> int:
        return api.get(f"/challenges/{challenge_id}/allowance", headers=headers).json()["today_left"]

    files_before = media_files(api_server)
    refusals = {}
    for sample in (empty, filled):
        isolated = isolating((n, h, w), sample)
        response = upload(api, headers, challenge_id, isolated, method=f"is {sample} empty")
        detail = refused_as_all_zeros(api_server, response, isolated)
        refusals[sample] = (response.status_code, re.sub(r"\(sample [^)]*\)", "(…)", detail))  # the file's numbers
    assert refusals[empty] == refusals[filled], refusals
    assert submissions_of(api_server, challenge_id) == 0 and media_files(api_server) == files_before
    assert today_left() == 5, "a refused upload must not count (it says nothing, so it costs nothing)"

    outcome, visible = {}, {}
    for sample in (empty, filled):
        result = scored_upload(api, headers, challenge_id, bump_probe((n, h, w), sample, rng.random((h, w)) + 0.1),
                               f"is {sample} empty")  # fmt: skip
        outcome[sample] = (result["status"], result["error"])
        visible[sample] = (result["summary"], result["per_sample"], result["public_value"], result["progress"])
    assert outcome[empty] == outcome[filled] == ("done", None), outcome
    assert visible[empty] == visible[filled], (
        f"VULNERABLE: before the end, what an upload bumped on one private sample shows depends on that private "
        f"mask: empty sample {empty} -> {visible[empty]}, filled sample {filled} -> {visible[filled]}"
    )
    public_counts = {(r["scored"], r["not_scorable"]) for r in visible[empty][0] if r["split"] == "public"}
    assert public_counts == {expected_counts(masks, codes, PUBLIC, "mass")}, public_counts  # over the fixed set
    assert today_left() == 3  # both accepted probes counted


def test_private_parts_stay_hidden_until_the_final_board_is_published(api: httpx.Client, api_server: LiveApp):
    """Closed but not yet published (reveal 'manual'): no private figure in the submitter's result, the baselines
    or the boards; published: they appear (the control)."""
    challenge_id, organiser = gt_challenge(api_server)
    update_rules(api_server.db, organiser.id, challenge_id, Rules(reveal="manual"))
    alice = make_user(api_server.db, _name("alice"))
    headers = bearer(token_for(api_server, alice))
    shape = shape_of(api, challenge_id)
    posted = upload(api, headers, challenge_id, np.random.default_rng(1).random(shape))
    assert posted.status_code == 202, posted.text
    submission_id = posted.json()["id"]
    assert wait_scored(api, headers, submission_id)["status"] == "done"
    update_rules(api_server.db, organiser.id, challenge_id,
                 Rules(reveal="manual", ends_at=datetime.now(UTC) - timedelta(minutes=1)))  # fmt: skip
    baseline_ids = [r["submission_id"] for r in api.get(f"/challenges/{challenge_id}/leaderboard").json()["baselines"]]

    def private_visible() -> list[str]:
        seen = []
        own = api.get(f"/submissions/{submission_id}", headers=headers).json()
        if any(r["split"] == "private" for r in own["summary"] + own["per_sample"]):
            seen.append("own result")
        for sid in baseline_ids:
            body = api.get(f"/submissions/{sid}", headers=headers).json()
            if any(r["split"] == "private" for r in body["summary"] + body["per_sample"]):
                seen.append(f"baseline {sid}")
        board = api.get(f"/challenges/{challenge_id}/leaderboard", params={"board": "private"})
        if board.status_code == 200:
            seen.append("private board")
        if api.get(f"/challenges/{challenge_id}/leaderboard.csv", params={"board": "private"}).status_code == 200:
            seen.append("private CSV")
        return seen

    assert api.get(f"/challenges/{challenge_id}").json()["rules"]["private_revealed"] is False
    assert private_visible() == []
    assert api.get(f"/challenges/{challenge_id}/leaderboard").json()["board"] == "public"
    refused(api_server, api.get(f"/challenges/{challenge_id}/leaderboard", params={"board": "private"}), 422)
    publish_private_board(api_server.db, organiser.id, challenge_id)
    assert set(private_visible()) >= {"own result", "private board", "private CSV"}


def test_after_the_end_only_final_submissions_show_private_figures(api: httpx.Client, api_server: LiveApp):
    """docs/security.md, threat model: private aggregates reach a participant 'after the end, at most K final
    submissions' private figures'. Every probe's private part used to appear after the reveal, so five probes made
    while the challenge ran (the 13-bit differencing of the public attack above, on a private sample) each gave
    their private figures at the end.

    Now only the submissions that count at the end show them (exact.permissions.result_access with
    db/evaluations.counts_at_the_end): the chosen final, else the best public one. Mallory makes five constant-map
    probes bumped on private sample j and chooses the third as her final; Eve makes two uploads and chooses none
    (her better public one counts). Fails if any other submission shows a private figure, if the chosen or the
    best-public one does not, or if what is shown pins j's pixels down."""
    challenge_id, organiser = rigid_challenge(api_server, rules=Rules(final_count=1))
    mallory, eve = make_user(api_server.db, _name("mallory")), make_user(api_server.db, _name("eve"))
    mallorys, eves = bearer(token_for(api_server, mallory)), bearer(token_for(api_server, eve))
    organisers = bearer(token_for(api_server, organiser))
    evaluation = api.get(f"/challenges/{challenge_id}").json()["evaluation"]
    shape = tuple(evaluation["shape"])
    n, h, w = shape
    n_private = evaluation["split_sizes"]["private"]
    masks, codes = truth(api_server, challenge_id)
    target = int(np.flatnonzero(codes == PRIVATE)[0])
    groups = pixel_groups(h * w)
    probes: list[tuple[int, np.ndarray, np.ndarray]] = []  # (id, pixels, attributions)
    for i, pixels in enumerate(groups):
        attributions = bump_probe(shape, target, bit_weights(h, w, pixels))
        result = scored_upload(api, mallorys, challenge_id, attributions, f"private bits {i}")
        assert {r["split"] for r in result["summary"]} == {"development", "public"}  # nothing private yet
        probes.append((result["id"], pixels, attributions))
    chosen = probes[2][0]  # not the best public one (all probes tie on the public part: the first would count)
    assert choose_finals(api_server.db, mallory.id, challenge_id, [chosen]) == [chosen]
    eves_ids = [scored_upload(api, eves, challenge_id, a, f"eve {i}")["id"]
                for i, a in enumerate((np.ones(shape), masks + 0.05))]  # fmt: skip
    update_rules(api_server.db, organiser.id, challenge_id,
                 Rules(final_count=1, ends_at=datetime.now(UTC) - timedelta(minutes=1)))  # fmt: skip
    assert api.get(f"/challenges/{challenge_id}").json()["rules"]["private_revealed"] is True

    def private_rows(submission_id: int, headers) -> list[dict]:
        result = api.get(f"/submissions/{submission_id}", headers=headers).json()
        if headers is not organisers:  # organisers see every per-sample value; participants development only
            assert {r["split"] for r in result["per_sample"]} <= {"development"}, result["per_sample"]
        return [r for r in result["summary"] if r["split"] == "private"]

    mallory_sees = {sid: private_rows(sid, mallorys) for sid, _, _ in probes}
    with_private = [sid for sid, rows in mallory_sees.items() if rows]
    assert with_private == [chosen], (
        f"VULNERABLE: after the reveal {len(with_private)} of Mallory's {len(probes)} probes show private figures "
        f"({with_private}; final count 1, chosen {chosen})"
    )
    eve_public = {sid: api.get(f"/submissions/{sid}", headers=eves).json()["public_value"] for sid in eves_ids}
    best_public = max(eves_ids, key=lambda sid: (eve_public[sid], -sid))
    assert best_public == eves_ids[1], eve_public  # the masks beat a constant map
    assert [sid for sid in eves_ids if private_rows(sid, eves)] == [best_public]
    # The controls: the private parts exist (the organiser sees them on every probe), and the reveal happened
    # (baselines show theirs to everyone).
    assert all(private_rows(sid, organisers) for sid, _, _ in probes)
    baselines = [r["submission_id"] for r in api.get(f"/challenges/{challenge_id}/leaderboard").json()["baselines"]]
    assert baselines and all(private_rows(sid, mallorys) for sid in baselines)

    # Decoding from what Mallory is shown: one probe's rounded private mass mean, over the whole private split.
    inside = mask_size_from_development(api, challenge_id)
    shown = next(r for r in mallory_sees[chosen] if r["metric"] == "mass")
    assert at_most_4_decimals(shown["mean"]) and shown["scored"] == n_private
    _, pixels, attributions = next(p for p in probes if p[0] == chosen)
    exact_baseline = split_mean(np.ones(shape), masks, codes, PRIVATE, "mass")
    assert abs(shown["mean"] - split_mean(attributions, masks, codes, PRIVATE, "mass")) <= 0.5e-4 + 1e-12
    candidates = consistent_codes(shown["mean"], exact_baseline, inside, h * w, n_private, pixels)
    actual = masks[target].reshape(-1) > 0
    assert int(bit_weights(h, w, pixels).reshape(-1)[actual].sum()) in candidates
    # The other four groups of pixels got no figure at all; the chosen one's figure fits several codes.
    assert len(candidates) > 1, (
        f"VULNERABLE: the final's private mass mean {shown['mean']} pins 13 pixels of private sample {target} down"
    )
    # (Within the bound: a participant who packs a whole private sample into their final, random weights on all
    # pixels, may well learn its mask from the final's figures; but only after the end, when nothing can be
    # submitted any more, and for at most final_count submissions.)


def test_the_waiting_queue_limit_binds_a_script_and_request_keys_do_not_bypass_it(quiet_server: LiveApp):
    """EXACT_MAX_QUEUED_PER_USER=2 and nothing is scored: a third upload is refused whatever its request key,
    challenge or concurrency; replaying a key answers with the first submission and stores nothing."""
    app = quiet_server
    first_id, _ = gt_challenge(app)
    second_id, _ = gt_challenge(app)
    mallory = make_user(app.db, _name("mallory"))
    headers = bearer(token_for(app, mallory))
    with httpx.Client(base_url=f"{app.url}/api/v1", timeout=30) as client:
        shape = shape_of(client, first_id)
        attributions = np.random.default_rng(3).random(shape)
        one = upload(client, headers, first_id, attributions, key="k1")
        two = upload(client, headers, first_id, attributions, key="k2")
        assert one.status_code == two.status_code == 202, (one.text, two.text)
        files_before = media_files(app)
        for key in ("k3", None, "k1-but-not-quite"):
            detail = refused(app, upload(client, headers, first_id, attributions, key=key), 422)["detail"]
            assert "waiting" in detail
        # A key of the documented 100 characters is refused too (prefixed with "api:<id>:" it is too long for the
        # service: "Invalid submission key."), which is a refusal all the same.
        refused(app, upload(client, headers, first_id, attributions, key="x" * 100), 422)
        detail = refused(app, upload(client, headers, second_id, attributions, key="k4"), 422)["detail"]
        assert "waiting" in detail  # the queue is per user over every challenge
        replay = upload(client, headers, first_id, attributions, key="k1")
        assert replay.status_code == 202 and replay.json()["id"] == one.json()["id"]
        waiting = client.get(f"/submissions/{one.json()['id']}", headers=headers).json()
        assert waiting["status"] == "queued" and waiting["progress"] == {"done": 0, "total": shape[0]}
        assert waiting["summary"] == [] and waiting["per_sample"] == [] and waiting["public_value"] is None
        # A second token of the same user is the same user.
        other_token = bearer(token_for(app, mallory, name="second laptop"))
        refused(app, upload(client, other_token, first_id, attributions, key="k5"), 422)
        assert media_files(app) == files_before
    # Eight uploads at once from a fresh account, each with its own key: exactly two are stored.
    eve = make_user(app.db, _name("eve"))
    eves = bearer(token_for(app, eve))

    def send(i: int) -> int:
        with httpx.Client(base_url=f"{app.url}/api/v1", timeout=60) as client:
            return upload(client, eves, first_id, attributions, key=f"burst-{i}").status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(send, range(8)))
    assert statuses == [202, 202] + [422] * 6, statuses
    assert count(app, "SELECT count(*) FROM exact_submission WHERE user_id = :u", u=mallory.id) == 2
    assert count(app, "SELECT count(*) FROM exact_submission WHERE user_id = :u", u=eve.id) == 2


def test_daily_limits_bind_a_script_and_request_keys_do_not_bypass_them(api: httpx.Client, api_server: LiveApp):
    challenge_id, organiser = gt_challenge(api_server)
    update_rules(api_server.db, organiser.id, challenge_id, Rules(daily_limit=2))
    mallory = make_user(api_server.db, _name("mallory"))
    headers = bearer(token_for(api_server, mallory))
    shape = shape_of(api, challenge_id)
    attributions = np.random.default_rng(4).random(shape) + 0.1  # no all-zero map: the daily limit is what binds
    first = upload(api, headers, challenge_id, attributions, key="day-1")
    second = upload(api, headers, challenge_id, attributions, key="day-2")
    assert first.status_code == second.status_code == 202
    for key in ("day-3", None):
        assert "today" in refused(api_server, upload(api, headers, challenge_id, attributions, key=key), 422)["detail"]
    replay = upload(api, headers, challenge_id, attributions, key="day-1")
    assert replay.status_code == 202 and replay.json()["id"] == first.json()["id"]
    left = api.get(f"/challenges/{challenge_id}/allowance", headers=headers).json()
    assert left["today_left"] == 0 and left["may_submit"] is False
    assert submissions_of(api_server, challenge_id) == 2

    # Score-only challenges: the same limit over /scores, also for ten requests at once.
    scores_id = score_challenge(api_server, rules=Rules(daily_limit=3))
    eve = make_user(api_server.db, _name("eve"))
    eves = bearer(token_for(api_server, eve))

    def send(i: int) -> int:
        with httpx.Client(base_url=f"{api_server.url}/api/v1", timeout=60) as client:
            body = {"score": 0.1 * i, "request_key": f"score-{i}"}
            return client.post(f"/challenges/{scores_id}/scores", json=body, headers=eves).status_code

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        statuses = sorted(pool.map(send, range(10)))
    assert statuses == [201] * 3 + [422] * 7, statuses
    stored = count(api_server, "SELECT count(*) FROM api_score WHERE challenge_id = :c", c=scores_id)
    assert stored == 3
    # Replaying a key with another score answers with the first row and stores nothing; a key that was refused
    # (past the limit) stays refused. Which three keys won is found by replaying all ten (the server stores a key
    # under a digest, web/api.py _service_key, so the stored rows do not say).
    accepted = count_rows(api_server, "SELECT request_key FROM exact_submission_request WHERE request_key LIKE :k",
                          k=f"api:{eve.id}:%")  # fmt: skip
    assert len(accepted) == 3
    replays = {i: api.post(f"/challenges/{scores_id}/scores", json={"score": 0.99, "request_key": f"score-{i}"},
                           headers=eves) for i in range(10)}  # fmt: skip
    won = [i for i, again in replays.items() if again.status_code == 201]
    assert len(won) == 3, {i: r.status_code for i, r in replays.items()}
    for i, again in replays.items():
        if i in won:
            assert again.json()["repeated"] is True and again.json()["score"] == pytest.approx(0.1 * i), again.text
        else:
            assert "today" in refused(api_server, again, 422)["detail"]
    assert count(api_server, "SELECT count(*) FROM api_score WHERE challenge_id = :c", c=scores_id) == 3


# === 2. reaching another participant ==================================================================================


def test_enumerating_submission_ids_reaches_only_baselines(api: httpx.Client, api_server: LiveApp):
    challenge_id, _ = gt_challenge(api_server)
    alice, mallory = make_user(api_server.db, _name("alice")), make_user(api_server.db, _name("mallory"))
    rival = make_user(api_server.db, _name("rival"), staff=True)  # an organiser, but of other challenges
    alices = bearer(token_for(api_server, alice))
    secret_method = f"Alice's secret method {uuid.uuid4().hex}"
    posted = upload(api, alices, challenge_id, np.random.default_rng(5).random(shape_of(api, challenge_id)),
                    method=secret_method, extra={"description": "private notes"})  # fmt: skip
    assert posted.status_code == 202
    alices_id = posted.json()["id"]
    wait_scored(api, alices, alices_id)
    kinds = {}
    with api_server.db.connect() as conn:
        for row in conn.execute(sa.text("SELECT id, kind, user_id FROM exact_submission")).mappings():
            kinds[row["id"]] = (row["kind"], row["user_id"])
    for headers in (bearer(token_for(api_server, mallory)), bearer(token_for(api_server, rival))):
        for sid in range(1, max(kinds) + 5):
            response = api.get(f"/submissions/{sid}", headers=headers)
            assert secret_method not in response.text
            kind = kinds.get(sid, (None, None))[0]
            if kind == "baseline":
                body = response.json()
                assert response.status_code == 200 and body["method_name"] in BASELINES.values(), body
                assert body["progress"] is None and {r["split"] for r in body["per_sample"]} <= {"development"}
            else:
                refused(api_server, response, 403, 404)
        assert api.get("/me/submissions", headers=headers).json()["total"] == 0
        mine = api.get("/me/submissions", headers=headers, params={"challenge_id": challenge_id}).json()
        assert mine["items"] == []
    # The route has no file download: nothing under /submissions/{id}/… exists.
    for path in (
        f"/submissions/{alices_id}/file",
        f"/submissions/{alices_id}/attributions",
        f"/submissions/{alices_id}/",
    ):
        assert api.get(path, headers=alices).status_code in (404, 405, 307)
    assert api.get(f"/submissions/{alices_id}", headers=alices).json()["method_name"] == secret_method  # control


def test_no_client_sent_name_id_or_header_changes_who_acts(api: httpx.Client, api_server: LiveApp):
    alice, bob = make_user(api_server.db, _name("alice")), make_user(api_server.db, _name("bob"))
    alices = bearer(token_for(api_server, alice))
    impersonation = {
        "X-Forwarded-User": bob.username, "X-Remote-User": bob.username, "Remote-User": bob.username,
        "X-User": bob.username, "X-User-Id": str(bob.id), "X-Auth-Request-User": bob.username,
        "X-Forwarded-Email": "bob@example.org", "X-Impersonate": bob.username, "Cookie": f"user={bob.username}",
    }  # fmt: skip
    # Without a token, the headers make nobody.
    for path in ("/me", "/me/submissions"):
        refused(api_server, api.get(path, headers=impersonation), 401)
    scores_id = score_challenge(api_server)
    refused(api_server, api.post(f"/challenges/{scores_id}/scores", json={"score": 0.5}, headers=impersonation), 401)
    # With Alice's token, the request is Alice's whatever else it says.
    assert api.get("/me", headers=alices | impersonation).json()["username"] == alice.username
    params = {"user_id": bob.id, "username": bob.username, "as": bob.username}
    assert api.get("/me", headers=alices, params=params).json()["username"] == alice.username
    body = {"score": 0.5, "username": bob.username, "user_id": bob.id, "user": {"id": bob.id}}
    answer = api.post(f"/challenges/{scores_id}/scores", json=body, headers=alices | impersonation)
    assert answer.status_code in (201, 422), answer.text
    with api_server.db.connect() as conn:
        names = conn.execute(sa.text("SELECT username FROM api_score WHERE challenge_id = :c"), {"c": scores_id})
        assert set(names.scalars()) <= {alice.username}
    challenge_id, _ = gt_challenge(api_server)
    posted = upload(api, alices | impersonation, challenge_id, np.ones(shape_of(api, challenge_id)),
                    extra={"username": bob.username, "user_id": str(bob.id)})  # fmt: skip
    assert posted.status_code in (202, 422), posted.text
    assert count(api_server, "SELECT count(*) FROM exact_submission WHERE user_id = :u", u=bob.id) == 0
    bobs_view = api.get("/me/submissions", headers=bearer(token_for(api_server, bob))).json()
    assert bobs_view["total"] == 0


def test_another_users_request_key_neither_replays_nor_blocks_their_submission(api: httpx.Client,
                                                                               api_server: LiveApp):  # fmt: skip
    alice, bob = make_user(api_server.db, _name("alice")), make_user(api_server.db, _name("bob"))
    alices, bobs = bearer(token_for(api_server, alice)), bearer(token_for(api_server, bob))
    scores_id = score_challenge(api_server)
    bobs_score = api.post(
        f"/challenges/{scores_id}/scores", json={"score": 0.25, "request_key": "shared"}, headers=bobs
    )
    assert bobs_score.status_code == 201
    alices_score = api.post(f"/challenges/{scores_id}/scores", json={"score": 0.75, "request_key": "shared"},
                            headers=alices)  # fmt: skip
    assert alices_score.status_code == 201, alices_score.text
    mine = alices_score.json()
    assert mine["username"] == alice.username and mine["repeated"] is False and mine["score"] == 0.75
    assert mine["score_id"] != bobs_score.json()["score_id"]
    # Keys that look like the server's own namespace are still Alice's own.
    for key in (f"api:{bob.id}:shared", f"{bob.id}:shared", f"api:{bob.id}:shared".upper()):
        answer = api.post(f"/challenges/{scores_id}/scores", json={"score": 0.5, "request_key": key}, headers=alices)
        assert answer.status_code == 201 and answer.json()["username"] == alice.username, answer.text
    again = api.post(f"/challenges/{scores_id}/scores", json={"score": 0.9, "request_key": "shared"}, headers=bobs)
    assert again.json()["repeated"] is True and again.json()["score"] == 0.25
    challenge_id, _ = gt_challenge(api_server)
    shape = shape_of(api, challenge_id)
    bobs_upload = upload(api, bobs, challenge_id, np.ones(shape), key="same-key", method="Bob's")
    alices_upload = upload(api, alices, challenge_id, np.ones(shape), key="same-key", method="Alice's")
    assert bobs_upload.status_code == alices_upload.status_code == 202
    assert alices_upload.json()["id"] != bobs_upload.json()["id"]
    assert alices_upload.json()["method_name"] == "Alice's"


# === 3. tokens ========================================================================================================


def test_dead_and_forged_tokens_are_refused_everywhere(api: httpx.Client, api_server: LiveApp):
    db = api_server.db
    revoked_user, expired_user = make_user(db, _name("revoked")), make_user(db, _name("expired"))
    inactive_user, deleted_user = make_user(db, _name("inactive")), make_user(db, _name("deleted"))
    live_user = make_user(db, _name("live"))
    revoked, expired = token_for(api_server, revoked_user), token_for(api_server, expired_user)
    inactive, deleted = token_for(api_server, inactive_user), token_for(api_server, deleted_user)
    live = token_for(api_server, live_user)
    from exact import api_tokens

    api_tokens.revoke_token(db, revoked_user.id, api_tokens.list_tokens(db, revoked_user.id)[0].id)
    with db.transaction() as conn:
        conn.execute(sa.text("UPDATE exact_api_token SET expires_at = now() - interval '1 minute' WHERE user_id = :u"),
                     {"u": expired_user.id})  # fmt: skip
        conn.execute(sa.text("UPDATE auth_user SET is_active = false WHERE id = :u"), {"u": inactive_user.id})
        conn.execute(sa.text("DELETE FROM auth_user WHERE id = :u"), {"u": deleted_user.id})
    flipped = live[:-1] + ("A" if live[-1] != "A" else "B")
    forged = {
        "revoked": revoked, "expired": expired, "inactive user": inactive, "deleted user": deleted,
        "one character changed": flipped, "prefix only": "exact_", "no prefix": live.removeprefix("exact_"),
        "upper case": live.upper(), "too long": live + "x" * 300, "sql": "exact_' OR '1'='1",
        "hash of a live token": api_tokens.hash_token(live),
    }  # fmt: skip
    scores_id = score_challenge(api_server)
    for what, token in forged.items():
        for response in (
            api.get("/me", headers=bearer(token)),
            api.get("/me/submissions", headers=bearer(token)),
            api.get("/challenges", headers=bearer(token)),  # public, but never as a visitor with a header
            api.get(f"/challenges/{scores_id}/allowance", headers=bearer(token)),
            api.post(f"/challenges/{scores_id}/scores", json={"score": 0.5}, headers=bearer(token)),
        ):
            refused(api_server, response, 401, secret_texts=(token, live))
            assert response.headers["www-authenticate"].startswith("Bearer"), what
    assert count(api_server, "SELECT count(*) FROM api_score WHERE challenge_id = :c", c=scores_id) == 0
    assert api.get("/me", headers=bearer(live)).json()["username"] == live_user.username  # the control


def test_authorization_header_variants_act_as_the_tokens_owner_or_nobody(api: httpx.Client, api_server: LiveApp):
    alice, bob = make_user(api_server.db, _name("alice")), make_user(api_server.db, _name("bob"))
    alices, bobs = token_for(api_server, alice), token_for(api_server, bob)
    bad = "exact_" + secrets.token_urlsafe(32)
    variants = [
        f"bearer {alices}", f"BEARER {alices}", f"Bearer  {alices}", f"Bearer {alices} ", f"Bearer\t{alices}",
        f"Token {alices}", f"Basic {alices}", "Bearer", "Bearer ", f"Bearer {alices} {bobs}", f"Bearer {alices},{bobs}",
        f"Bearer {bad}", f"{alices}", f"Bearer {alices}\x00",
    ]  # fmt: skip
    for header in variants:
        try:
            response = api.get("/me", headers={"Authorization": header})
        except (httpx.LocalProtocolError, ValueError):
            continue  # the client refuses to send it: nothing to attack
        if response.status_code == 200:
            assert response.json()["username"] == alice.username, header  # only ever the token's own user
        else:
            refused(api_server, response, 400, 401, secret_texts=(alices, bobs))
        visitor_page = api.get("/challenges", headers={"Authorization": header})
        assert visitor_page.status_code in (200, 400, 401)
        if visitor_page.status_code == 200:  # a 200 must come from a valid token, not a visitor fallback
            assert api.get("/me", headers={"Authorization": header}).status_code == 200, header
    # Two Authorization headers: never a visitor, never a user whose token was not sent, never a mix of scopes.
    read_only = token_for(api_server, alice, scopes=("read",))
    for pair in ((bad, alices), (alices, bad), (alices, bobs), (bobs, alices), (read_only, alices)):
        headers = [("Authorization", f"Bearer {pair[0]}"), ("Authorization", f"Bearer {pair[1]}")]
        response = api.get("/me", headers=headers)
        if response.status_code == 200:
            owners = {alices: alice.username, bobs: bob.username, read_only: alice.username}
            assert response.json()["username"] in {owners.get(t) for t in pair}
        else:
            refused(api_server, response, 400, 401)
    scores_id = score_challenge(api_server)
    two = [("Authorization", f"Bearer {read_only}"), ("Authorization", f"Bearer {alices}")]
    response = api.post(f"/challenges/{scores_id}/scores", json={"score": 0.5}, headers=two)
    assert response.status_code in (400, 401, 403), response.text  # the first header decides, never the union


def test_tokens_outside_the_authorization_header_are_ignored(api: httpx.Client, api_server: LiveApp):
    alice = make_user(api_server.db, _name("alice"))
    token = token_for(api_server, alice)
    scores_id = score_challenge(api_server)
    for params in ({"token": token}, {"access_token": token}, {"api_key": token}, {"bearer": token},
                   {"authorization": f"Bearer {token}"}):  # fmt: skip
        refused(api_server, api.get("/me", params=params), 401, secret_texts=(token,))
        refused(api_server, api.get("/me/submissions", params=params), 401, secret_texts=(token,))
        refused(api_server, api.post(f"/challenges/{scores_id}/scores", params=params, json={"score": 0.5}), 401,
                secret_texts=(token,))  # fmt: skip
    for headers in ({"X-Api-Key": token}, {"X-Auth-Token": token}, {"Cookie": f"token={token}; access_token={token}"},
                    {"Proxy-Authorization": f"Bearer {token}"}):  # fmt: skip
        refused(api_server, api.get("/me", headers=headers), 401, secret_texts=(token,))
    refused(api_server, api.post(f"/challenges/{scores_id}/scores", json={"score": 0.5, "token": token}), 401)
    # An upload with the token in a form field. Sent whole in one write on a fresh connection: the upload gate
    # answers 401 from the headers and closes the connection, and a body still unread in the server's socket then
    # turns the close into a reset that loses the 401 (what httpx meets on a kept-alive connection, where the
    # headers are read before the body arrives). So the request goes raw, and the server has read all of it.
    boundary = "tokenfield"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="method_name"\r\n\r\nm\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="token"\r\n\r\n{token}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.npy"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + npy(np.ones((1, 8, 8)))
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /api/v1/challenges/{scores_id}/submissions HTTP/1.1\r\nHost: {urlparse(api_server.url).netloc}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    answer = raw_http(api_server, head + body)
    status, answer_headers, problem = raw_answer(answer)
    assert status == 401 and answer_headers["content-type"].startswith("application/problem+json"), answer[:400]
    assert problem["status"] == 401 and problem["detail"] and token not in answer.decode(errors="replace")
    raw_clean(api_server, answer)
    assert count(api_server, "SELECT count(*) FROM api_score WHERE challenge_id = :c", c=scores_id) == 0


def test_a_tokens_scopes_bound_what_it_does(api: httpx.Client, api_server: LiveApp):
    challenge_id, _ = gt_challenge(api_server)
    alice = make_user(api_server.db, _name("alice"))
    read_only = bearer(token_for(api_server, alice, scopes=("read",)))
    submit_only = bearer(token_for(api_server, alice, scopes=("submit",)))
    full = bearer(token_for(api_server, alice))
    files_before = media_files(api_server)
    refused(api_server, upload(api, read_only, challenge_id, np.ones(shape_of(api, challenge_id))), 403)
    assert submissions_of(api_server, challenge_id) == 0 and media_files(api_server) == files_before
    posted = upload(api, submit_only, challenge_id, np.ones(shape_of(api, challenge_id)))
    assert posted.status_code == 202
    for path in (f"/submissions/{posted.json()['id']}", "/me/submissions", f"/challenges/{challenge_id}/allowance"):
        refused(api_server, api.get(path, headers=submit_only), 403)
    assert api.get(f"/submissions/{posted.json()['id']}", headers=full).status_code == 200  # the control


# === 4. downloads =====================================================================================================


def test_no_endpoint_serves_a_private_file(api: httpx.Client, api_server: LiveApp):
    """The private root's files (masks and split, baseline attributions) by every route and trick: traversal in
    the kind and the challenge id, Django rows and an evaluation row pointing at them (relative, absolute, through
    a symlink inside the media root), Streamlit's own routes; another participant's stored upload likewise."""
    challenge_id, _ = gt_challenge(api_server)
    alice = make_user(api_server.db, _name("alice"))
    posted = upload(api, bearer(token_for(api_server, alice)), challenge_id, np.ones(shape_of(api, challenge_id)))
    assert posted.status_code == 202
    private_files = [p for p in api_server.private_root.rglob("*") if p.is_file() and challenge_id in str(p)]
    assert any(p.name == "masks.npz" for p in private_files) and len(private_files) >= 2
    secrets_ = {p: p.read_bytes() for p in private_files}
    stored_upload = next(p for p in api_server.media_root.rglob("*.npy") if f"submissions/{challenge_id}/" in str(p))
    secrets_[stored_upload] = stored_upload.read_bytes()
    answers: list[httpx.Response] = []

    def get(path: str, **kwargs) -> httpx.Response:
        response = httpx.get(f"{api_server.url}{path}", timeout=30, **kwargs)
        answers.append(response)
        return response

    relative = {p: p.relative_to(api_server.private_root).as_posix() for p in private_files}
    up = os.path.relpath(api_server.private_root, api_server.media_root)  # "../private"
    for path, rel in relative.items():
        for kind in (rel, f"../../{rel}", f"{up}/{rel}", path.name, "masks", "private", "split", "submissions"):
            for encoded in (kind, kind.replace("/", "%2F"), kind.replace(".", "%2e").replace("/", "%2f")):
                get(f"/api/v1/challenges/{challenge_id}/files/{encoded}")
        for sneaky_id in ("..", "%2e%2e", f"..%2F{up}%2F{rel}", f"{challenge_id}%2F..%2F..", "."):
            get(f"/api/v1/challenges/{sneaky_id}/files/dataset")
            get(f"/api/v1/challenges/{sneaky_id}/files/evaluation-inputs")
        for streamlit_path in (f"/media/{rel}", f"/app/static/{rel}", f"/static/{rel}", f"/{rel}",
                               f"/app/static/..%2F..%2F{rel}", f"/media/..%2F{up}%2F{rel}"):  # fmt: skip
            get(streamlit_path)
    upload_rel = stored_upload.relative_to(api_server.media_root).as_posix()
    for path in (f"/media/{upload_rel}", f"/app/static/{upload_rel}", f"/{upload_rel}",
                 f"/api/v1/challenges/{challenge_id}/files/{upload_rel}"):  # fmt: skip
        get(path)
    # Rows pointing at the private files: a Django challenge and an evaluation row edited behind the app's back.
    masks_path = next(p for p in private_files if p.name == "masks.npz")
    link_dir = api_server.media_root / "challenges" / _name("links-")
    link_dir.mkdir(parents=True)
    (link_dir / "masks.npz").symlink_to(masks_path)
    django_id = _name("django-")
    pointers = [f"{up}/{relative[masks_path]}", f"challenges/../{up}/{relative[masks_path]}",
                f"{link_dir.relative_to(api_server.media_root).as_posix()}/masks.npz"]  # fmt: skip
    if len(str(masks_path)) <= 100:
        pointers.append(str(masks_path))
    try:
        with api_server.db.transaction() as conn:
            conn.execute(sa.text("INSERT INTO api_challenge (challenge_id, title, description, dataset, mlmodel, "
                                 "xaimethod, created_at) VALUES (:c, 'Django', 'x', :a, :b, :d, now())"),
                         {"c": django_id, "a": pointers[0], "b": pointers[1], "d": pointers[2]})  # fmt: skip
        details = get(f"/api/v1/challenges/{django_id}")
        assert details.status_code == 200 and details.json()["files"] == [], details.text
        for kind in ("dataset", "model", "xai"):
            refused(api_server, get(f"/api/v1/challenges/{django_id}/files/{kind}"), 404)
        evaluated_id, _ = gt_challenge(api_server)
        for pointer in pointers:
            with api_server.db.transaction() as conn:
                conn.execute(sa.text("UPDATE exact_evaluation SET inputs_path = :p WHERE challenge_id = :c"),
                             {"p": pointer, "c": evaluated_id})  # fmt: skip
            details = get(f"/api/v1/challenges/{evaluated_id}")
            assert details.status_code == 200, details.text
            assert all(f["kind"] != "evaluation-inputs" for f in details.json()["files"])
            refused(api_server, get(f"/api/v1/challenges/{evaluated_id}/files/evaluation-inputs"), 404)
    finally:
        (link_dir / "masks.npz").unlink()
        link_dir.rmdir()
    for response in answers:
        assert response.status_code != 500, (response.request.url, response.text[:300])
        for path, content in secrets_.items():
            assert content not in response.content, f"{response.request.url} served {path}"
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            assert_clean(api_server, response)
    assert_healthy(api_server)


def test_the_published_files_hold_no_mask_of_a_public_or_private_sample(api: httpx.Client, api_server: LiveApp):
    challenge_id, _ = rigid_challenge(api_server)
    details = api.get(f"/challenges/{challenge_id}").json()
    sizes = details["evaluation"]["split_sizes"]
    n, h, w = details["evaluation"]["shape"]
    masks, codes = truth(api_server, challenge_id)
    secret = masks[codes != DEV]
    kinds = {f["kind"] for f in details["files"]}
    assert {"dataset", "evaluation-inputs"} <= kinds
    for item in details["files"]:
        content = api.get(item["download_path"].removeprefix("/api/v1")).content
        assert len(content) == item["size_bytes"]
        with np.load(io.BytesIO(content), allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        assert not {"masks", "split", "labels", "y_test", "masks_test", "split_codes"} & set(arrays), sorted(arrays)
        for key, array in arrays.items():
            if array.ndim == 3 and array.shape[1:] == (h, w) and array.shape[0] >= len(secret):
                # Rigid masks repeat between samples; no published stack may hold the secret ones in their order.
                assert not np.array_equal(array[: len(secret)], secret), key
            assert not (array.shape == masks.shape and np.array_equal(array, masks)), key
        if item["kind"] == "evaluation-inputs":
            assert set(arrays) == {"inputs", "development_indices", "development_masks"}, sorted(arrays)
            assert arrays["inputs"].shape == (n, h, w)
            development = arrays["development_indices"]
            assert development.shape == (sizes["development"],)
            assert sorted(development.tolist()) == np.flatnonzero(codes == DEV).tolist()
            assert arrays["development_masks"].shape == (sizes["development"], h, w)
            assert np.array_equal(arrays["development_masks"], masks[development])


# === 5. size limits and hostile files =================================================================================


def test_a_huge_declared_body_is_refused_before_it_is_read(api_server: LiveApp):
    challenge_id, _ = gt_challenge(api_server)
    scores_id = score_challenge(api_server)
    token = token_for(api_server, make_user(api_server.db, _name("alice")))
    host = urlparse(api_server.url).netloc
    before = (submissions_of(api_server, challenge_id), media_files(api_server))
    for path, content_type, declared in (
        (f"/api/v1/challenges/{challenge_id}/submissions", "multipart/form-data; boundary=b", 10**12),
        (f"/api/v1/challenges/{scores_id}/scores", "application/json", 65 * 1024),
        (f"/api/v1/challenges/{scores_id}/scores", "application/json", 2**63 - 1),
    ):
        answer = raw_http(api_server, (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {declared}\r\n\r\n--b\r\n"
        ).encode())  # fmt: skip
        assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
        assert b"application/problem+json" in answer
        raw_clean(api_server, answer)
    for declared in ("abc", "-1", "1e9", "12, 12"):
        answer = raw_http(api_server, (
            f"POST /api/v1/challenges/{scores_id}/scores HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n{{}}"
        ).encode())  # fmt: skip
        assert answer[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 413", b"HTTP/1.1 422") or answer == b"", answer[:300]
        raw_clean(api_server, answer)
    # A GET is not size-limited by the API; a body it never reads must not hang or hurt the server.
    # The socket timeout only keeps a broken run from hanging; what is asserted is that an answer came at all.
    answer = raw_http(api_server, (f"GET /api/v1/challenges HTTP/1.1\r\nHost: {host}\r\nContent-Length: {10**12}\r\n"
                                   "Connection: close\r\n\r\nxyz").encode(), timeout=60)  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 "), answer[:300]
    assert (submissions_of(api_server, challenge_id), media_files(api_server)) == before
    assert count(api_server, "SELECT count(*) FROM api_score WHERE challenge_id = :c", c=scores_id) == 0
    assert_healthy(api_server)


def test_a_chunked_upload_past_the_limit_is_cut_off_and_leaves_nothing(api: httpx.Client, api_server: LiveApp):
    challenge_id, _ = gt_challenge(api_server)
    headers = bearer(token_for(api_server, make_user(api_server.db, _name("alice"))))
    before = (submissions_of(api_server, challenge_id), media_files(api_server))
    boundary = "hostileboundary"
    shape = shape_of(api, challenge_id)
    head = npy(np.ones(shape))

    def body():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"method_name\"\r\n\r\nbig\r\n"
               f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.npy\"\r\n"
               "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
        yield head
        for _ in range(40):  # 40 × 100 KB past a 3 MB limit
            yield b"\0" * 100_000
        yield f"\r\n--{boundary}--\r\n".encode()

    try:
        multipart = headers | {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        response = api.post(f"/challenges/{challenge_id}/submissions", content=body(), headers=multipart)
        refused(api_server, response, 413)
    except httpx.TransportError:
        pass  # the server answered 413 and closed while the client was still sending: refused all the same
    assert (submissions_of(api_server, challenge_id), media_files(api_server)) == before
    assert_healthy(api_server)


def test_multipart_with_thousands_of_parts_is_refused_cleanly(api: httpx.Client, api_server: LiveApp):
    challenge_id, _ = gt_challenge(api_server)
    headers = bearer(token_for(api_server, make_user(api_server.db, _name("alice"))))
    shape = shape_of(api, challenge_id)
    before = (submissions_of(api_server, challenge_id), media_files(api_server))
    many_fields = [("method_name", "m")] + [(f"f{i}", "x") for i in range(3000)]
    response = api.post(f"/challenges/{challenge_id}/submissions", headers=headers, data=dict(many_fields),
                        files={"file": ("a.npy", npy(np.ones(shape)))})  # fmt: skip
    refused(api_server, response, 400, 413, 422)
    many_files = [("file", (f"a{i}.npy", b"\x93NUMPY")) for i in range(1500)]
    response = api.post(f"/challenges/{challenge_id}/submissions", headers=headers, data={"method_name": "m"},
                        files=many_files)  # fmt: skip
    refused(api_server, response, 400, 413, 422)
    response = api.post(f"/challenges/{challenge_id}/submissions", headers=headers,
                        data={"method_name": "m", "description": "d" * 1_500_000},
                        files={"file": ("a.npy", npy(np.ones(shape)))})  # fmt: skip
    refused(api_server, response, 400, 413, 422)
    # The same file twice: one submission at most (never two rows from one request).
    twice = [("file", ("a.npy", npy(np.ones(shape)))), ("file", ("b.npy", npy(np.ones(shape))))]
    response = api.post(f"/challenges/{challenge_id}/submissions", headers=headers, data={"method_name": "twice"},
                        files=twice)  # fmt: skip
    assert response.status_code in (202, 400, 422), response.text
    assert submissions_of(api_server, challenge_id) - before[0] <= (1 if response.status_code == 202 else 0)
    if response.status_code != 202:
        assert media_files(api_server) == before[1]
    assert_healthy(api_server)


class _Marker:
    """Unpickling this creates a folder: proof that a pickle was (or was not) loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def _npz_bomb(shape: tuple[int, int, int], inflated: int) -> bytes:
    """An .npz whose attributions.npy has a valid header for ``shape`` and inflates to ``inflated`` bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                   "shape": (inflated // 8 // 64, 8, 8)})  # fmt: skip
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("attributions.npy", "w", force_zip64=True) as entry,
    ):
        entry.write(header.getvalue())
        chunk = b"\0" * (1 << 20)
        for _ in range(inflated // len(chunk)):
            entry.write(chunk)
    return buffer.getvalue()


def _forged_npy(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 4096


def test_hostile_array_files_are_refused_without_harm(api: httpx.Client, api_server: LiveApp, tmp_path: Path):
    challenge_id, _ = gt_challenge(api_server)
    headers = bearer(token_for(api_server, make_user(api_server.db, _name("alice"))))
    shape = shape_of(api, challenge_id)
    marker = tmp_path / "unpickled"
    object_array = np.empty(shape[0], dtype=object)
    object_array[:] = [_Marker(str(marker))] * shape[0]
    pickled_npy = io.BytesIO()
    np.save(pickled_npy, object_array, allow_pickle=True)
    with_pickle = io.BytesIO()
    with zipfile.ZipFile(with_pickle, "w") as archive:
        archive.writestr("attributions.npy", pickled_npy.getvalue())
    with_pkl_member = io.BytesIO()
    with zipfile.ZipFile(with_pkl_member, "w") as archive:
        archive.writestr("attributions.npy", npy(np.ones(shape)))
        archive.writestr("payload.pkl", pickle.dumps(_Marker(str(marker))))
    many_entries = io.BytesIO()
    with zipfile.ZipFile(many_entries, "w") as archive:
        for i in range(5000):
            archive.writestr(f"e{i}.npy", b"")
    hostile = {
        "npz bomb (256 MiB inflated)": ("bomb.npz", _npz_bomb(shape, 256 << 20)),
        "npz with a pickled object array": ("p.npz", with_pickle.getvalue()),
        "npz with a .pkl member": ("q.npz", with_pkl_member.getvalue()),
        "npz with 5000 entries": ("m.npz", many_entries.getvalue()),
        "npy with a pickled object array": ("p.npy", pickled_npy.getvalue()),
        "raw pickle named .npy": ("r.npy", pickle.dumps(_Marker(str(marker)), protocol=4)),
        "npy claiming 10^12 samples": ("g.npy", _forged_npy((10**12, 8, 8))),
        "npy claiming 2^62 × 2^62": ("h.npy", _forged_npy((2**62, 2**62))),
        "npy with a negative shape": ("n.npy", _forged_npy((-1, 8, 8))),
        "npy of object dtype header": ("o.npy", _forged_npy(shape, "|O")),
        "npy truncated": ("t.npy", npy(np.ones(shape))[:200]),
    }
    before = (submissions_of(api_server, challenge_id), media_files(api_server))
    for what, (name, content) in hostile.items():
        assert len(content) < MAX_BYTES, what
        response = upload(api, headers, challenge_id, content, name=name)
        refused(api_server, response, 422)
        assert not marker.exists(), f"{what}: a pickle was loaded"
    assert (submissions_of(api_server, challenge_id), media_files(api_server)) == before
    assert_healthy(api_server)


# === 6. error answers =================================================================================================


def _odd_requests(challenge_id: str, scores_id: str, shape) -> dict[str, tuple[str, str, dict]]:
    ones = npy(np.ones(shape))
    return {
        "NUL in the challenge filter of /me/submissions": (
            "GET", "/me/submissions", {"params": {"challenge_id": "\0"}}),
        "NUL in a score's request key": (
            "POST", f"/challenges/{scores_id}/scores", {"json": {"score": 0.5, "request_key": "key\0"}}),
        "NUL in an upload's request key": (
            "POST", f"/challenges/{challenge_id}/submissions",
            {"data": {"method_name": "m", "request_key": "key\0"}, "files": {"file": ("a.npy", ones)}}),
        "lone surrogate in a score's request key": (
            "POST", f"/challenges/{scores_id}/scores",
            {"content": b'{"score": 0.5, "request_key": "\\ud800"}', "headers": {"Content-Type": "application/json"}}),
        "NUL in the method name": (
            "POST", f"/challenges/{challenge_id}/submissions",
            {"data": {"method_name": "m\0"}, "files": {"file": ("a.npy", ones)}}),
        "NUL in the file name": (
            "POST", f"/challenges/{challenge_id}/submissions",
            {"data": {"method_name": "m"}, "files": {"file": ("a\0.npy", ones)}}),
        "NUL in the search": ("GET", "/challenges", {"params": {"search": "\0"}}),
        "submission id past bigint": ("GET", "/submissions/99999999999999999999999", {}),
        "negative submission id": ("GET", "/submissions/-5", {}),
        "challenge id of 10,000 characters": ("GET", "/challenges/" + "c" * 10_000, {}),
        "score of 1e999": ("POST", f"/challenges/{scores_id}/scores", {"json": {"score": "1e999"}}),
        "score as a list": ("POST", f"/challenges/{scores_id}/scores", {"json": {"score": [1]}}),
        "request key of 101 characters": (
            "POST", f"/challenges/{scores_id}/scores", {"json": {"score": 0.5, "request_key": "k" * 101}}),
        "a body that is JSON null": (
            "POST", f"/challenges/{scores_id}/scores",
            {"content": b"null", "headers": {"Content-Type": "application/json"}}),
        "deeply nested JSON": (
            "POST", f"/challenges/{scores_id}/scores",
            {"content": b"[" * 20000 + b"]" * 20000, "headers": {"Content-Type": "application/json"}}),
        "offset past the cap": ("GET", f"/challenges/{scores_id}/leaderboard", {"params": {"offset": 10**12}}),
        "board of another kind": ("GET", f"/challenges/{scores_id}/leaderboard", {"params": {"board": "'; DROP"}}),
    }  # fmt: skip


ODD = list(_odd_requests("c", "s", (1, 8, 8)))


@pytest.mark.parametrize("what", ODD)
def test_odd_input_is_a_clean_refusal_not_a_server_error(api: httpx.Client, api_server: LiveApp, what: str):
    challenge_id, _ = gt_challenge(api_server)
    scores_id = score_challenge(api_server)
    alice = make_user(api_server.db, _name("alice"))
    token = token_for(api_server, alice)
    method, path, kwargs = _odd_requests(challenge_id, scores_id, shape_of(api, challenge_id))[what]
    kwargs = dict(kwargs)
    kwargs["headers"] = bearer(token) | kwargs.get("headers", {})
    before = (submissions_of(api_server, challenge_id), media_files(api_server))
    response = api.request(method, path, **kwargs)
    assert response.status_code != 500, f"VULNERABLE: {what} -> 500 {response.text}"
    if response.status_code >= 400:  # refused: cleanly, and nothing stored
        refused(api_server, response, response.status_code, secret_texts=(token,))
        assert (submissions_of(api_server, challenge_id), media_files(api_server)) == before
        assert count(api_server, "SELECT count(*) FROM api_score WHERE challenge_id = :c", c=scores_id) == 0
    else:  # accepted (e.g. a NUL in the uploaded file's name, which is never used: the file is stored by hash)
        assert_clean(api_server, response, token)
        assert all("\0" not in name for name in media_files(api_server))
    assert_healthy(api_server)


def test_a_database_outage_answers_without_connection_details(scratch_databases, tmp_path_factory):
    password = "Sup3r-" + secrets.token_hex(8)
    db_url = f"postgresql://exact_nobody:{password}@127.0.0.1:1/exact_nowhere"
    app = _start_app(db_url, tmp_path_factory.mktemp("api_outage"), {"EXACT_WORKER": "off"})
    try:
        with httpx.Client(base_url=f"{app.url}/api/v1", timeout=60) as client:
            secret_texts = (password, "exact_nobody", "exact_nowhere", "127.0.0.1:1", ":1/")
            health = client.get("/health")
            assert health.status_code == 503, health.text  # the health body, or a 503 problem: either says it
            assert health.json().get("status") in ("unavailable", 503), health.text
            assert_clean(app, health, *secret_texts)
            for response in (
                client.get("/challenges"),
                client.get("/challenges/anything/leaderboard.csv"),
                client.get("/me", headers=bearer("exact_" + secrets.token_urlsafe(32))),
                client.post(
                    "/challenges/x/scores", json={"score": 1}, headers=bearer("exact_" + secrets.token_urlsafe(32))
                ),
            ):
                refused(app, response, 401, 503, secret_texts=secret_texts)
        assert app.process.poll() is None
    finally:
        app.stop()


# === 7. the CSV leaderboard ===========================================================================================

FORMULAS = ('=HYPERLINK("https://evil.example","x")', "+SUM(1,2)", "-2+3", "@SUM(A1:A2)", "=cmd|' /C calc'!A0")


def _assert_defused(table: str, columns: tuple[str, ...], expected: set[str]) -> None:
    rows = list(csv.DictReader(io.StringIO(table)))
    cells = {row[c] for row in rows for c in columns}
    assert {"'" + f for f in expected} <= cells, cells
    dangerous = [c for row in rows for c in row.values() if c and c[0] in "=+-@\t\r" and not _is_number(c)]
    assert not dangerous, dangerous


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_the_csv_leaderboard_defuses_formulas_in_names(api: httpx.Client, api_server: LiveApp):
    scores_id = score_challenge(api_server)
    for i, formula in enumerate(FORMULAS):
        user = make_user(api_server.db, formula if i else f"{formula}{uuid.uuid4().hex[:4]}")
        answer = api.post(f"/challenges/{scores_id}/scores", json={"score": -0.5 - i},
                          headers=bearer(token_for(api_server, user)))  # fmt: skip
        assert answer.status_code == 201, answer.text
    names = set(count_rows(api_server, "SELECT username FROM api_score WHERE challenge_id = :c", c=scores_id))
    for show_all in ("false", "true"):
        table = api.get(f"/challenges/{scores_id}/leaderboard.csv", params={"show_all": show_all}).text
        _assert_defused(table, ("username",), names)
    challenge_id, _ = gt_challenge(api_server)
    alice = make_user(api_server.db, _name("=alice"))
    headers = bearer(token_for(api_server, alice))
    shape = shape_of(api, challenge_id)
    for i, formula in enumerate(FORMULAS):
        posted = upload(api, headers, challenge_id, np.random.default_rng(i).random(shape), method=formula)
        assert posted.status_code == 202, posted.text
        wait_scored(api, headers, posted.json()["id"])
    table = api.get(f"/challenges/{challenge_id}/leaderboard.csv", params={"show_all": "true"}).text
    _assert_defused(table, ("method", "username"), set(FORMULAS) | {alice.username})


def count_rows(app: LiveApp, sql: str, **params) -> list:
    with app.db.connect() as conn:
        return list(conn.execute(sa.text(sql), params).scalars())


# === 8. rate limits ===================================================================================================


def test_a_burst_past_the_rate_gets_429_with_retry_after(stingy_server: LiveApp):
    app = stingy_server
    alice = make_user(app.db, _name("alice"))
    token = token_for(app, alice)
    with httpx.Client(base_url=f"{app.url}/api/v1", timeout=30) as client:
        variants = [f"Bearer {token}", f"bearer {token}", f"Bearer  {token}", f"BEARER {token}"]
        answers = [client.get("/me", headers={"Authorization": variants[i % 4]}) for i in range(STINGY_RATE + 3)]
    assert [a.status_code for a in answers] == [200] * STINGY_RATE + [429] * 3
    for answer in answers[STINGY_RATE:]:
        refused(app, answer, 429, secret_texts=(token,))
        assert 1 <= int(answer.headers["retry-after"]) <= 60


def test_visitors_and_token_guessers_cannot_dodge_the_limit_by_claiming_another_address(stingy_server: LiveApp):
    """From a client address the server does not trust as a proxy, X-Forwarded-For and friends are ignored."""
    app = stingy_server
    with client_from(app, "127.0.0.2") as client:
        answers = [
            client.get(
                "/challenges",
                headers={"X-Forwarded-For": f"10.0.{i}.1", "X-Real-IP": f"10.1.{i}.1", "Forwarded": f"for=10.2.{i}.1"},
            ).status_code  # fmt: skip
            for i in range(STINGY_RATE + 3)
        ]
    assert answers == [200] * STINGY_RATE + [429] * 3, answers
    with client_from(app, "127.0.0.3") as client:
        guesses = [
            client.get("/me", headers=bearer("exact_" + secrets.token_urlsafe(32)) | {"X-Forwarded-For": f"10.3.{i}.1"})
            for i in range(STINGY_RATE + 3)
        ]
    assert [g.status_code for g in guesses] == [401] * STINGY_RATE + [429] * 3
    for guess in guesses:
        assert_clean(app, guess)


def test_token_guessing_through_a_same_machine_proxy_cannot_rotate_x_forwarded_for(stingy_server: LiveApp):
    """docs/deployment.md: a reverse proxy on the same machine, the app on 127.0.0.1, the proxy appending the
    client's address (nginx: proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for). uvicorn trusts
    X-Forwarded-For from loopback only and takes the right-most address that is not a trusted proxy: the one the
    proxy appended. A client that rotates the X-Forwarded-For it sends (plain addresses, lists, loopback claims,
    IPv6, junk) still has one key: its real address, here 198.51.100.7, which this test appends as the proxy would
    and sends from 127.0.0.1 like the proxy. So the invalid-token throttle and the visitor limit bind after the
    allowance. Fails if the server keyed on any address the client chose (e.g. the left-most one, or the header
    from an untrusted peer): then every guess would have a fresh bucket and no 429 would come."""
    app = stingy_server
    real_client = "198.51.100.7"  # TEST-NET-2: the address the proxy saw

    def rotating(i: int) -> str:
        return [
            f"203.0.113.{i + 1}",
            f"10.{i}.0.1, 192.0.2.{i + 1}",
            f"192.0.2.{i + 1}, 127.0.0.1",
            "127.0.0.1",
            f"2001:db8::{i + 1:x}",
            f"[2001:db8::{i + 1:x}]:4711",
            f"198.51.100.{i + 20}:80",
            "unknown",
            "",
        ][i % 9]

    def through_proxy(i: int) -> dict[str, str]:
        sent = rotating(i)
        return {"X-Forwarded-For": f"{sent}, {real_client}" if sent else real_client}

    tries = 4 * STINGY_RATE
    with httpx.Client(base_url=f"{app.url}/api/v1", timeout=30) as client:
        guesses = [client.get("/me", headers=bearer("exact_" + secrets.token_urlsafe(32)) | through_proxy(i))
                   for i in range(tries)]  # fmt: skip
        visits = [client.get("/challenges", headers=through_proxy(i)) for i in range(tries)]
        # Another client behind the same proxy is not held back by this one's guesses.
        other = client.get("/challenges", headers={"X-Forwarded-For": "198.51.100.8"})
    assert [g.status_code for g in guesses] == [401] * STINGY_RATE + [429] * (tries - STINGY_RATE), (
        f"VULNERABLE: {[g.status_code for g in guesses].count(401)} invalid-token guesses from one client within a "
        f"minute, past the limit of {STINGY_RATE}, by rotating the X-Forwarded-For it sends"
    )
    assert [v.status_code for v in visits] == [200] * STINGY_RATE + [429] * (tries - STINGY_RATE), [
        v.status_code for v in visits
    ]
    for answer in guesses[STINGY_RATE:] + visits[STINGY_RATE:]:
        refused(app, answer, 429)
        assert 1 <= int(answer.headers["retry-after"]) <= 60
    assert other.status_code == 200, other.text


def test_the_upload_gate_answers_from_the_headers_alone_and_throttles_bad_tokens(stingy_server: LiveApp):
    """web/limits.py UploadGate: an upload without a live token with the 'submit' scope is answered before its
    body is read, so nobody without one makes the server receive and spool megabytes. Sent here: the request line
    and headers of an upload declaring a 300 KB body (well within the upload limit, so the size check lets it
    through) and no body at all. The answer must come anyway (a server that waited for the body would leave the
    socket silent until the timeout: the control with a valid token shows that it does then wait). And bad tokens
    sent there count against the same per-address bad-token throttle as everywhere else: past the allowance of
    the stingy server, 429 at the upload as at /me. Fails if the gate went (the 401/403 would wait for the body),
    or if the upload path checked tokens without counting the failures."""
    app = stingy_server
    challenge_id, _ = gt_challenge(app)
    alice = make_user(app.db, _name("alice"))
    read_only, full = token_for(app, alice, scopes=("read",)), token_for(app, alice)
    host = urlparse(app.url).netloc
    source = "127.0.0.4"  # an address of its own: its own visitor and bad-token buckets

    def head_only(authorization: str | None, *, timeout: float = 10) -> bytes:
        auth = f"Authorization: {authorization}\r\n" if authorization is not None else ""
        request = (
            f"POST /api/v1/challenges/{challenge_id}/submissions HTTP/1.1\r\nHost: {host}\r\n{auth}"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 300000\r\n\r\n"
        ).encode()
        return raw_http(app, request, timeout=timeout, source=source)

    def gate_refusal(authorization: str | None, status: int) -> dict:
        # No body byte is ever sent: an answer at all (before the hang guard's timeout) means it came from the
        # headers alone.
        answer = head_only(authorization, timeout=60)
        assert answer, f"no answer to an upload with {authorization!r}: the server waited for the body"
        got, headers, body = raw_answer(answer)
        assert got == status, (got, answer[:400])
        assert headers["content-type"].startswith("application/problem+json"), headers
        assert body["status"] == status and body["title"] and body["detail"], body
        raw_clean(app, answer)
        assert read_only not in answer.decode(errors="replace") and full not in answer.decode(errors="replace")
        if status == 401:
            assert headers["www-authenticate"].startswith("Bearer"), headers
        return body

    before = (submissions_of(app, challenge_id), media_files(app))
    gate_refusal(None, 401)
    gate_refusal(f"Basic {full}", 401)  # not a bearer token at all: refused like none
    gate_refusal(f"Bearer {read_only}", 403)
    # The control: with a live token that may submit, the server does wait for the body (no answer in 3 s).
    answer = head_only(f"Bearer {full}", timeout=3)
    assert answer == b"", answer[:400]
    # Bad tokens: at the upload and at /me they share one allowance per address (STINGY_RATE failures a minute).
    guesses = []
    with client_from(app, source) as client:
        for i in range(STINGY_RATE):
            bad = "exact_" + secrets.token_urlsafe(32)
            if i % 2 == 0:
                guesses.append(("upload", gate_refusal(f"Bearer {bad}", 401)["status"]))
            else:
                guesses.append(("/me", refused(app, client.get("/me", headers=bearer(bad)), 401)["status"]))
        bad = "exact_" + secrets.token_urlsafe(32)
        guesses.append(("upload", gate_refusal(f"Bearer {bad}", 429)["status"]))
        guesses.append(("/me", refused(app, client.get("/me", headers=bearer(bad)), 429)["status"]))
    assert [status for _, status in guesses] == [401] * STINGY_RATE + [429, 429], guesses
    assert (submissions_of(app, challenge_id), media_files(app)) == before
    assert_healthy(app)
