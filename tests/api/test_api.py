"""The HTTP API over real HTTP (httpx) against a running server.py: tokens, endpoints, visibility, errors, limits.

One server per module (tests/api/conftest.py); each test seeds its own users and challenges on its database.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from db import scores as scores_sql
from exact import api_tokens, evaluation_sets, scoring
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.competition import Rules, update_rules
from exact.storage import MediaStorage
from exact.xaitris import BenchmarkSpec
from tests.api.conftest import bearer, token_for
from tests.conftest import make_user
from tests.live_server import LiveApp
from tests.polling import wait_until

MAX_BYTES = 2 * 1024 * 1024  # the server's EXACT_MAX_UPLOAD_MB


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def _organiser(app: LiveApp):
    return make_user(app.db, _name("org"), staff=True)


def score_challenge(app: LiveApp, *, rules: Rules | None = None) -> str:
    organiser = _organiser(app)
    challenge_id = _name("scores-")
    media = MediaStorage(app.media_root, max_bytes=MAX_BYTES)
    create_challenge(app.db, media, organiser.id, ChallengeForm("Score only", "Submit a number.", challenge_id), {})
    if rules is not None:
        update_rules(app.db, organiser.id, challenge_id, rules)
    return challenge_id


def gt_challenge(app: LiveApp, *, n_samples: int = 200) -> tuple[str, object]:
    """A generated 8x8 XAI-TRIS challenge scored on the server, its baselines scored; returns (id, organiser)."""
    organiser = _organiser(app)
    challenge_id = _name("gt-")
    media = MediaStorage(app.media_root, max_bytes=MAX_BYTES)
    private = MediaStorage(app.private_root, max_bytes=MAX_BYTES)
    prepared = evaluation_sets.prepare_benchmark(BenchmarkSpec(scenario="linear", size=8, n_samples=n_samples, seed=3))
    create_challenge(
        app.db, media, organiser.id, ChallengeForm("Tetrominoes", "Find them.", challenge_id), {},
        evaluation=EvaluationChoice(prepared=prepared, private=private, primary_metric="emd", shown_metrics=("mass",)),
    )  # fmt: skip
    scoring.score_waiting_baselines(app.db, media, private, challenge_id)
    return challenge_id, organiser


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def shape_of(api: httpx.Client, challenge_id: str) -> tuple[int, ...]:
    return tuple(api.get(f"/challenges/{challenge_id}").json()["evaluation"]["shape"])


def is_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def count(app: LiveApp, sql: str, **params) -> int:
    with app.db.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


# --- the document and operations --------------------------------------------------------------------------------


def test_openapi_document_lists_every_endpoint_and_the_docs_page_shows_them(api: httpx.Client):
    document = api.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    paths = set(document["paths"])
    expected = {
        "/health", "/me", "/challenges", "/challenges/{challenge_id}", "/challenges/{challenge_id}/files/{kind}",
        "/challenges/{challenge_id}/allowance", "/challenges/{challenge_id}/scores",
        "/challenges/{challenge_id}/submissions", "/submissions/{submission_id}", "/me/submissions",
        "/challenges/{challenge_id}/leaderboard", "/challenges/{challenge_id}/leaderboard.csv",
    }  # fmt: skip
    assert expected <= paths
    assert document["servers"] == [{"url": "/api/v1"}]
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    page = api.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for path in expected:
        assert f"/api/v1{path}" in page.text
    assert "<script" not in page.text  # nothing loaded from elsewhere, nothing executed


def test_health_reports_the_database_and_the_queue(api: httpx.Client, api_server: LiveApp):
    challenge_id, _ = gt_challenge(api_server)
    with api_server.db.transaction() as conn:  # a queued submission that nobody scores (its file does not exist)
        conn.execute(sa.text("UPDATE exact_submission SET status = 'queued', finished_at = NULL, "
                             "created_at = now() - interval '30 seconds' WHERE id = (SELECT min(id) FROM "
                             "exact_submission WHERE challenge_id = :c)"), {"c": challenge_id})  # fmt: skip
    # The scorer may pick it up at once; whatever it does, the figures must add up with the database's.
    body = api.get("/health").json()
    assert body["status"] == "ok" and body["database"]["ok"] is True
    queue = body["scoring_queue"]
    assert queue["depth"] == queue["queued"] + queue["running"]
    assert queue["done_last_hour"] >= len(evaluation_sets.BASELINES) - 1


def test_metrics_are_prometheus_text_with_requests_and_the_queue(api: httpx.Client, api_server: LiveApp):
    api.get("/challenges")
    api.get("/challenges/no-such-thing")
    text = httpx.get(f"{api_server.url}/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}  # an independent parser
    requests = families["exact_http_requests"]
    labels = {(s.labels["route"], s.labels["status"]) for s in requests.samples if s.name.endswith("_total")}
    assert ("/api/v1/challenges", "200") in labels
    assert ("/api/v1/challenges/{challenge_id}", "404") in labels  # the template, never the raw id
    assert not any("no-such-thing" in route for route, _ in labels)
    for n in range(3):  # invented methods are one label, not a new series each
        httpx.request(f"FOO{n}", f"{api_server.url}/api/v1/challenges")
    text = httpx.get(f"{api_server.url}/metrics").text
    methods = {s.labels["method"] for f in text_string_to_metric_families(text) if f.name == "exact_http_requests"
               for s in f.samples}  # fmt: skip
    assert "OTHER" in methods and not any(m.startswith("FOO") for m in methods)
    assert "exact_http_request_duration_seconds" in families
    assert {s.labels["state"] for s in families["exact_scoring_queue_depth"].samples} == {"queued", "running"}
    assert families["exact_database_up"].samples[0].value == 1.0


# --- tokens -------------------------------------------------------------------------------------------------------


def test_a_token_acts_as_its_user(api: httpx.Client, api_server: LiveApp):
    alice = make_user(api_server.db, _name("alice"))
    body = api.get("/me", headers=bearer(token_for(api_server, alice, name="laptop"))).json()
    assert body["username"] == alice.username and body["token"]["name"] == "laptop"
    assert sorted(body["token"]["scopes"]) == ["read", "submit"]


def test_refused_tokens_get_401_and_never_fall_back_to_a_visitor(api: httpx.Client, api_server: LiveApp):
    alice, bob = make_user(api_server.db, _name("alice")), make_user(api_server.db, _name("bob"))
    revoked, inactive = token_for(api_server, alice), token_for(api_server, bob)
    api_tokens.revoke_token(api_server.db, alice.id, api_tokens.list_tokens(api_server.db, alice.id)[0].id)
    with api_server.db.transaction() as conn:
        conn.execute(sa.text("UPDATE auth_user SET is_active = false WHERE id = :i"), {"i": bob.id})
    challenge_id = score_challenge(api_server)
    for headers in (bearer(revoked), bearer(inactive), bearer("exact_" + "x" * 43), {"Authorization": "Basic YTpi"}):
        for response in (
            api.get("/me", headers=headers),
            api.get("/challenges", headers=headers),
            api.post(f"/challenges/{challenge_id}/scores", json={"score": 1}, headers=headers),
        ):
            body = is_problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "token" in body["detail"].lower() or "bearer" in body["detail"].lower()
    assert count(api_server, "SELECT count(*) FROM api_score WHERE challenge_id = :c", c=challenge_id) == 0


def test_endpoints_about_you_need_a_token_and_its_scope(api: httpx.Client, api_server: LiveApp):
    alice = make_user(api_server.db, _name("alice"))
    challenge_id = score_challenge(api_server)
    for path in ("/me/submissions", f"/challenges/{challenge_id}/allowance", "/submissions/1"):
        assert "profile page" in is_problem(api.get(path), 401)["detail"]
    is_problem(api.post(f"/challenges/{challenge_id}/scores", json={"score": 0.5}), 401)
    read_only = bearer(token_for(api_server, alice, scopes=("read",)))
    assert (
        "'submit' scope"
        in is_problem(api.post(f"/challenges/{challenge_id}/scores", json={"score": 0.5}, headers=read_only), 403)[
            "detail"
        ]
    )
    submit_only = bearer(token_for(api_server, alice, scopes=("submit",)))
    is_problem(api.get("/me/submissions", headers=submit_only), 403)
    assert api.post(f"/challenges/{challenge_id}/scores", json={"score": 0.5}, headers=submit_only).status_code == 201


def test_a_token_never_reaches_another_users_submissions(api: httpx.Client, api_server: LiveApp):
    challenge_id, _ = gt_challenge(api_server)
    alice, mallory = make_user(api_server.db, _name("alice")), make_user(api_server.db, _name("mallory"))
    alices = bearer(token_for(api_server, alice))
    shape = shape_of(api, challenge_id)
    posted = api.post(
        f"/challenges/{challenge_id}/submissions", headers=alices,
        data={"method_name": "Alice's method"}, files={"file": ("a.npy", npy(np.random.default_rng(1).random(shape)))},
    )  # fmt: skip
    assert posted.status_code == 202, posted.text
    submission_id = posted.json()["id"]
    mallorys = bearer(token_for(api_server, mallory))
    assert "Only the submitter" in is_problem(api.get(f"/submissions/{submission_id}", headers=mallorys), 403)["detail"]
    assert api.get("/me/submissions", headers=mallorys).json()["total"] == 0
    mine = api.get("/me/submissions", headers=alices).json()
    assert [s["id"] for s in mine["items"]] == [submission_id] and mine["next_offset"] is None


# --- challenges and files -----------------------------------------------------------------------------------------


def test_challenges_list_search_and_details(api: httpx.Client, api_server: LiveApp):
    scored_id, _ = gt_challenge(api_server)
    plain_id = score_challenge(api_server)
    listed = api.get("/challenges", params={"search": plain_id}).json()
    assert [c["challenge_id"] for c in listed["items"]] == [plain_id] and listed["total"] == 1
    assert listed["items"][0]["scored_on_server"] is False
    details = api.get(f"/challenges/{scored_id}").json()
    assert details["scored_on_server"] is True and details["rules"]["phase"] == "open"
    evaluation = details["evaluation"]
    stored = count(api_server, "SELECT n_samples FROM exact_evaluation WHERE challenge_id = :c", c=scored_id)
    assert evaluation["shape"] == [stored, 8, 8] and evaluation["npz_key"] == "attributions"
    assert sum(evaluation["split_sizes"].values()) == stored and set(evaluation["split_sizes"]) == {
        "development", "public", "private"
    }  # fmt: skip
    assert "seed" not in (evaluation["benchmark"] or {})  # the generator's seed regenerates every mask
    inputs = next(f for f in details["files"] if f["kind"] == "evaluation-inputs")
    download = api.get(inputs["download_path"].removeprefix("/api/v1"))
    assert download.status_code == 200 and len(download.content) == inputs["size_bytes"]
    with np.load(io.BytesIO(download.content)) as archive:
        assert "masks" not in archive.files or archive["masks"].shape[0] == evaluation["split_sizes"]["development"]
    is_problem(api.get(f"/challenges/{plain_id}/files/model"), 404)
    for sneaky in ("..%2F..%2Fetc%2Fpasswd", "../../etc/passwd", "%2e%2e"):
        response = api.get(f"/challenges/{plain_id}/files/{sneaky}")
        assert response.status_code in (400, 404, 422) and b"root:" not in response.content
    is_problem(api.get("/challenges/no-such-challenge"), 404)


def test_challenge_paging_reaches_every_challenge_once_at_1001(api: httpx.Client, api_server: LiveApp):
    prefix = _name("bulk")
    with api_server.db.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO api_challenge (challenge_id, title, description, dataset, mlmodel, xaimethod, created_at) "
                "SELECT :p || '-' || n, 'Bulk ' || n, 'x', '', '', '', now() FROM generate_series(1, 1001) n"
            ),
            {"p": prefix},
        )
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = api.get("/challenges", params={"search": prefix, "limit": 200, "offset": offset}).json()
        assert page["total"] == 1001
        seen += [c["challenge_id"] for c in page["items"]]
        offset = page["next_offset"]
    assert len(seen) == 1001 == len(set(seen))
    is_problem(api.get("/challenges", params={"limit": 501}), 422)
    is_problem(api.get("/challenges", params={"sort": "drop table"}), 422)
    from exact.challenges import SORT_LABELS

    for sort in SORT_LABELS:  # every order the pages offer, the API offers
        assert api.get("/challenges", params={"sort": sort, "search": prefix}).json()["total"] == 1001


# --- submitting ---------------------------------------------------------------------------------------------------


def test_submit_a_score_and_see_it_ranked(api: httpx.Client, api_server: LiveApp):
    challenge_id = score_challenge(api_server)
    alice = make_user(api_server.db, _name("alice"))
    headers = bearer(token_for(api_server, alice))
    first = api.post(f"/challenges/{challenge_id}/scores", json={"score": 0.81, "request_key": "k1"}, headers=headers)
    assert first.status_code == 201 and first.json()["rank"] == 1 and first.json()["repeated"] is False
    again = api.post(f"/challenges/{challenge_id}/scores", json={"score": 0.81, "request_key": "k1"}, headers=headers)
    assert again.json()["repeated"] is True and again.json()["score_id"] == first.json()["score_id"]
    assert count(api_server, "SELECT count(*) FROM api_score WHERE challenge_id = :c", c=challenge_id) == 1
    board = api.get(f"/challenges/{challenge_id}/leaderboard").json()
    assert [(r["rank"], r["username"], r["score"]) for r in board["rows"]] == [(1, alice.username, 0.81)]
    assert "score_id" not in board["columns"]


@pytest.mark.parametrize("score", [None, "abc", "1e999", True, [1], {"a": 1}, "NaN"])
def test_bad_scores_are_refused_and_nothing_is_stored(api: httpx.Client, api_server: LiveApp, score):
    challenge_id = score_challenge(api_server)
    headers = bearer(token_for(api_server, make_user(api_server.db, _name("alice"))))
    is_problem(api.post(f"/challenges/{challenge_id}/scores", json={"score": score}, headers=headers), 422)
    assert count(api_server, "SELECT count(*) FROM api_score WHERE challenge_id = :c", c=challenge_id) == 0


def test_malformed_json_is_a_problem_not_a_crash(api: httpx.Client, api_server: LiveApp):
    challenge_id = score_challenge(api_server)
    headers = bearer(token_for(api_server, make_user(api_server.db, _name("alice")))) | {
        "Content-Type": "application/json"
    }
    is_problem(api.post(f"/challenges/{challenge_id}/scores", content=b"{not json", headers=headers), 422)


def test_upload_attributions_is_scored_with_the_result_pages_visibility(api: httpx.Client, api_server: LiveApp):
    challenge_id, organiser = gt_challenge(api_server)
    alice = make_user(api_server.db, _name("alice"))
    headers = bearer(token_for(api_server, alice))
    shape = shape_of(api, challenge_id)
    posted = api.post(
        f"/challenges/{challenge_id}/submissions", headers=headers,
        data={"method_name": "Saliency", "url": "https://example.org/paper", "request_key": "run-1"},
        files={"file": ("saliency.npy", npy(np.random.default_rng(2).random(shape).astype(np.float32)))},
    )  # fmt: skip
    assert posted.status_code == 202, posted.text
    submission = posted.json()
    assert submission["status"] in ("queued", "running", "done") and submission["method_name"] == "Saliency"

    seen: list[dict] = []

    def finished() -> bool:
        seen.append(api.get(f"/submissions/{submission['id']}", headers=headers).json())
        return seen[-1]["status"] in ("done", "failed")

    wait_until(finished, "the server to score the upload")
    result = seen[-1]
    assert result["status"] == "done", result
    assert result["progress"] == {"done": shape[0], "total": shape[0]}
    splits = {row["split"] for row in result["summary"]}
    assert splits == {"development", "public"}  # the private part stays hidden while the challenge runs
    assert {row["split"] for row in result["per_sample"]} == {"development"}
    organisers = bearer(token_for(api_server, organiser))
    seen_by_organiser = api.get(f"/submissions/{submission['id']}", headers=organisers).json()
    assert {row["split"] for row in seen_by_organiser["summary"]} == {"development", "public", "private"}
    public = next(r for r in result["summary"] if r["split"] == "public" and r["metric"] == "emd")
    assert result["public_value"] == public["mean"]
    board = api.get(f"/challenges/{challenge_id}/leaderboard").json()
    assert alice.username in [r["username"] for r in board["rows"]]
    assert {b["method"] for b in board["baselines"]} >= {"Random attributions"}


def _files_under(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.npy", npy(np.zeros((3, 8, 8))), "got (3, 8, 8)"),
        ("a.npy", npy(np.array([{"x": 1}] * 30, dtype=object)), "unpickling"),
        ("a.txt", b"0.1 0.2", ".npy, .npz"),
        ("a.npy", b"", "empty"),
    ],
)
def test_bad_uploads_are_refused_and_leave_nothing(api: httpx.Client, api_server: LiveApp, name, content, message):
    challenge_id, _ = gt_challenge(api_server)
    headers = bearer(token_for(api_server, make_user(api_server.db, _name("alice"))))
    before = _files_under(api_server.media_root)
    response = api.post(f"/challenges/{challenge_id}/submissions", headers=headers, data={"method_name": "m"},
                        files={"file": (name, content)})  # fmt: skip
    assert message.lower() in is_problem(response, 422)["detail"].lower()
    assert count(api_server, "SELECT count(*) FROM exact_submission WHERE challenge_id = :c AND kind = 'participant'",
                 c=challenge_id) == 0  # fmt: skip
    assert _files_under(api_server.media_root) == before


def test_a_body_over_the_limit_is_refused_before_it_is_read(api_server: LiveApp):
    """The Content-Length alone decides: the server answers 413 although only a few bytes were ever sent."""
    import socket
    from urllib.parse import urlparse

    alice = make_user(api_server.db, _name("alice"))
    challenge_id, _ = gt_challenge(api_server)
    token = token_for(api_server, alice)
    url = urlparse(api_server.url)
    declared = 50 * MAX_BYTES
    with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
        sock.sendall(
            (f"POST /api/v1/challenges/{challenge_id}/submissions HTTP/1.1\r\nHost: {url.netloc}\r\n"
             f"Authorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
             f"Content-Length: {declared}\r\n\r\n--b\r\n").encode()
        )  # fmt: skip
        answer = sock.recv(4096).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "application/problem+json" in answer


def test_a_chunked_body_is_cut_off_at_the_limit(api: httpx.Client, api_server: LiveApp):
    challenge_id = score_challenge(api_server)
    headers = bearer(token_for(api_server, make_user(api_server.db, _name("alice"))))

    def chunks():
        yield b'{"score": 0.5, "pad": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = api.post(f"/challenges/{challenge_id}/scores", content=chunks(),
                        headers=headers | {"Content-Type": "application/json"})  # fmt: skip
    is_problem(response, 413)
    assert count(api_server, "SELECT count(*) FROM api_score WHERE challenge_id = :c", c=challenge_id) == 0


# --- leaderboards -------------------------------------------------------------------------------------------------


def test_leaderboard_pages_and_csv_reach_all_1001_participants_once(api: httpx.Client, api_server: LiveApp):
    challenge_id = score_challenge(api_server)
    with api_server.db.transaction() as conn:
        for n in range(1001):
            scores_sql.insert(conn, username=f"p{n:04d}", challenge_id=challenge_id, score=n / 1000)
    seen, offset = [], 0
    while offset is not None:
        page = api.get(f"/challenges/{challenge_id}/leaderboard", params={"limit": 300, "offset": offset}).json()
        assert page["total"] == 1001
        seen += page["rows"]
        offset = page["next_offset"]
    assert [r["rank"] for r in seen] == list(range(1, 1002))
    assert [r["username"] for r in seen] == [f"p{n:04d}" for n in range(1000, -1, -1)]  # higher is better
    response = api.get(f"/challenges/{challenge_id}/leaderboard.csv")
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert len(table) == 1001 and table[0]["username"] == "p1000" and table[-1]["username"] == "p0000"
    is_problem(api.get(f"/challenges/{challenge_id}/leaderboard", params={"limit": 1001}), 422)


def test_the_final_board_stays_closed_until_it_is_revealed(api: httpx.Client, api_server: LiveApp):
    running, organiser = gt_challenge(api_server)
    detail = is_problem(api.get(f"/challenges/{running}/leaderboard", params={"board": "private"}), 422)["detail"]
    assert "revealed" in detail
    is_problem(api.get(f"/challenges/{running}/leaderboard.csv", params={"board": "private"}), 422)
    update_rules(api_server.db, organiser.id, running, Rules(ends_at=datetime.now(UTC) - timedelta(minutes=1)))
    final = api.get(f"/challenges/{running}/leaderboard", params={"board": "private"}).json()
    assert final["board"] == "private"
    assert api.get(f"/challenges/{running}/leaderboard").json()["board"] == "private"  # the default once revealed
    score_only = score_challenge(api_server)
    assert (
        "one leaderboard"
        in is_problem(api.get(f"/challenges/{score_only}/leaderboard", params={"board": "private"}), 422)["detail"]
    )


# --- errors -------------------------------------------------------------------------------------------------------


def test_unknown_routes_and_methods_are_problems(api: httpx.Client, api_server: LiveApp):
    assert "/api/v1/docs" in is_problem(api.get("/nothing-here"), 404)["detail"]
    is_problem(api.delete("/challenges"), 405)
    headers = bearer(token_for(api_server, make_user(api_server.db, _name("alice"))))
    assert "submission_id" in is_problem(api.get("/submissions/not-a-number", headers=headers), 422)["detail"]


def test_an_upload_without_a_good_token_is_refused_before_its_body_is_read(api_server: LiveApp):
    """Only the headers are sent: a server that waited for the body would never answer (recv would time out)."""
    import socket
    from urllib.parse import urlparse

    challenge_id, _ = gt_challenge(api_server)
    read_only = token_for(api_server, make_user(api_server.db, _name("alice")), scopes=("read",))
    url = urlparse(api_server.url)
    for authorization, status in (("", "401"), ("Authorization: Bearer exact_nope\r\n", "401"),
                                  (f"Authorization: Bearer {read_only}\r\n", "403")):  # fmt: skip
        with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
            sock.sendall(
                (f"POST /api/v1/challenges/{challenge_id}/submissions HTTP/1.1\r\nHost: {url.netloc}\r\n"
                 f"{authorization}Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
                 ).encode()
            )  # fmt: skip
            answer = sock.recv(4096).decode(errors="replace")
        assert answer.startswith(f"HTTP/1.1 {status}"), answer
        assert "application/problem+json" in answer


# --- models to explain (docs/models.md): trained by the live server's own training process --------------------------


def test_the_servers_trainer_ships_the_models_and_the_api_serves_them(api_server: LiveApp, api: httpx.Client):
    from exact import networks
    from exact.trained_models import TrainingPlan

    organiser = _organiser(api_server)
    challenge_id = _name("models-")
    media = MediaStorage(api_server.media_root, max_bytes=MAX_BYTES)
    private = MediaStorage(api_server.private_root, max_bytes=MAX_BYTES)
    prepared = evaluation_sets.prepare_benchmark(BenchmarkSpec(scenario="rigid", size=8, n_samples=200, seed=4))
    create_challenge(
        api_server.db, media, organiser.id, ChallengeForm("Explain the CNN", "d", challenge_id), {},
        evaluation=EvaluationChoice(prepared=prepared, private=private, training=TrainingPlan("CNN8by8", epochs=2)),
    )  # fmt: skip

    def listed() -> list[dict]:
        response = api.get(f"/challenges/{challenge_id}/models")
        assert response.status_code == 200, response.text
        return response.json()["items"]

    assert [m["status"] for m in listed()] == ["queued", "queued"]
    wait_until(lambda: all(m["status"] == "ready" for m in listed()), "the server's trainer to train both models")
    models = listed()
    assert [(m["architecture"], m["explained"]) for m in models] == [("MLP8by8", False), ("CNN8by8", True)]
    inputs = np.random.default_rng(5).normal(size=(3, 8, 8)).astype(np.float32)
    for model in models:
        assert 0 <= model["test_accuracy"] <= 1 and model["epochs_done"] == 2
        weights = api.get(model["weights_path"].removeprefix("/api/v1"))
        graph = api.get(model["onnx_path"].removeprefix("/api/v1"))
        assert weights.status_code == 200 and graph.status_code == 200
        loaded = networks.load_safetensors(weights.content, model["architecture"], 8)
        np.testing.assert_allclose(networks.predict_onnx(graph.content, inputs), networks.predict(loaded, inputs),
                                   atol=1e-5)  # fmt: skip
        assert "safetensors.torch.load_file" in model["pytorch_snippet"]
    # The explained CNN's Captum baselines were queued by the trainer and scored by the scorer: reference rows.
    board = lambda: api.get(f"/challenges/{challenge_id}/leaderboard").json()  # noqa: E731
    wait_until(lambda: sum(" · " in b["method"] for b in board()["baselines"]) == 5, "the model baselines")
    is_problem(api.get(f"/challenges/{challenge_id}/models/{models[0]['id'] + 999}/weights"), 404)
    is_problem(api.get(f"/challenges/{challenge_id}/models/{models[0]['id']}/pickle"), 422)
