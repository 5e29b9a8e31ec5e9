"""The command-line client (``python -m exact submit / leaderboard / challenges``) and exact.client.

End to end against a running app over real HTTP (tests/live_server.py): the real CLI runs as a subprocess with
EXACT_URL and EXACT_TOKEN, a HOME of its own, and a DATABASE_URL that leads nowhere, so a command that opened the
database would fail. The pure parts (where the token and server come from, tables, paging text) are unit tests.
"""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from exact import api_tokens, client, evaluation_sets, intake, scoring
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.competition import Rules
from exact.errors import ValidationError
from exact.scores import submit_score
from exact.storage import MediaStorage, UploadedFile
from exact.xaitris import BenchmarkSpec
from tests.conftest import make_user
from tests.live_server import REPO_ROOT, LiveApp, live_app, start_live_app  # noqa: F401 - fixtures

PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
MAX_BYTES = 200 * 1024 * 1024
NOWHERE_DB = "postgresql://nobody@127.0.0.1:9/nowhere"  # the client commands must never open the database


# ---------------------------------------------------------------------------------------------------------------
# Helpers


def run_cli(*args: str, app: LiveApp | None, home: Path, token: str | None = None, timeout: float = 120, **env):
    """``python -m exact ARGS`` as a user would run it: only EXACT_URL, EXACT_TOKEN and HOME say where to go."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EXACT_")}
    environment.update(HOME=str(home), DATABASE_URL=NOWHERE_DB, EXACT_DATA_DIR=str(home / "exact-data"))
    if app is not None:
        environment["EXACT_URL"] = app.url
    if token is not None:
        environment["EXACT_TOKEN"] = token
    environment.update(env)
    return subprocess.run(
        [str(PYTHON), "-m", "exact", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO_ROOT,
        timeout=timeout,
    )


@pytest.fixture
def server(request: pytest.FixtureRequest) -> LiveApp:
    """tests/live_server.py's ``live_app``: the app served on a fresh scratch database with the schema."""
    return request.getfixturevalue("live_app")


@pytest.fixture
def start_server(request: pytest.FixtureRequest):
    """tests/live_server.py's ``start_live_app``: ``start_server(env={...})`` serves another one."""
    return request.getfixturevalue("start_live_app")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def stores(app: LiveApp) -> tuple[MediaStorage, MediaStorage]:
    assert app.private_root is not None
    return MediaStorage(app.media_root, max_bytes=MAX_BYTES), MediaStorage(app.private_root, max_bytes=MAX_BYTES)


def organiser(app: LiveApp):
    make_user(app.db, "root", superuser=True)  # also closes the first-run set-up
    return make_user(app.db, "olivia", staff=True)


def score_only_challenge(app: LiveApp, owner, challenge_id: str, title: str, **rules) -> None:
    media, _ = stores(app)
    create_challenge(
        app.db, media, owner.id, ChallengeForm(title, "Type in a number.", challenge_id), {}, rules=Rules(**rules)
    )


def server_scored_challenge(app: LiveApp, owner, challenge_id: str) -> np.ndarray:
    """An 8×8 XAI-TRIS challenge with its baselines already scored; returns the masks (the perfect answer)."""
    media, private = stores(app)
    prepared = evaluation_sets.prepare_benchmark(BenchmarkSpec(scenario="linear", size=8, n_samples=100, seed=5))
    create_challenge(
        app.db,
        media,
        owner.id,
        ChallengeForm("Tetrominoes 8", "Find the tetromino.", challenge_id),
        {},
        evaluation=EvaluationChoice(prepared=prepared, private=private, primary_metric="emd", shown_metrics=("mass",)),
    )
    assert scoring.score_waiting_baselines(app.db, media, private, challenge_id) == len(evaluation_sets.BASELINES)
    return prepared.masks


def token_for(app: LiveApp, user, scopes=("read", "submit")) -> api_tokens.NewToken:
    return api_tokens.create_token(app.db, user.id, name="laptop", scopes=list(scopes), days=30)


def write_npy(path: Path, array: np.ndarray, *, allow_pickle: bool = False) -> Path:
    with path.open("wb") as file:
        np.save(file, array, allow_pickle=allow_pickle)
    return path


def participant_submissions(app: LiveApp) -> list[dict]:
    with app.db.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, username, method_name, status, url, request_key FROM exact_submission "
                "WHERE kind = 'participant' ORDER BY id"
            )
        )
        return [dict(row) for row in rows.mappings()]


def scores_of(app: LiveApp, challenge_id: str) -> list[tuple[str, float]]:
    with app.db.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT username, score FROM api_score WHERE challenge_id = :c ORDER BY id"), {"c": challenge_id}
        )
        return [(r.username, r.score) for r in rows]


def upload_requests(app: LiveApp) -> float:
    """POST requests to the upload route the server counted (its /metrics), whatever their answer."""
    import httpx

    text = httpx.get(f"{app.url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("exact_http_requests_total{") and 'method="POST"' in line and "/submissions" in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------------------------
# End to end: challenges, leaderboard, submit --score


def test_challenges_lists_what_was_seeded_with_its_type_and_search(server: LiveApp, home: Path) -> None:
    owner = organiser(server)
    score_only_challenge(server, owner, "guess-pi", "Guess pi")
    server_scored_challenge(server, owner, "tetro-8")
    alice = make_user(server.db, "alice")
    submit_score(server.db, alice.id, "guess-pi", 3.14)

    listed = run_cli("challenges", app=server, home=home)  # no token needed: a public read
    assert listed.returncode == 0, listed.stderr
    out = lines(listed.stdout)
    assert re.split(r"\s{2,}", out[0].strip()) == ["id", "title", "participants", "type"]
    rows = {line.split()[0]: line for line in out[2:-1]}
    assert set(rows) == {"guess-pi", "tetro-8"}
    assert re.search(r"Guess pi\s+1\s+score-only$", rows["guess-pi"])
    assert re.search(r"Tetrominoes 8\s+0\s+server-scored$", rows["tetro-8"])
    assert out[-1] == "challenges 1–2 of 2 (last page)."

    searched = run_cli("challenges", "--search", "tetro", app=server, home=home)
    assert searched.returncode == 0, searched.stderr
    assert "tetro-8" in searched.stdout and "guess-pi" not in searched.stdout

    first = run_cli("challenges", "--limit", "1", app=server, home=home)
    assert first.returncode == 0, first.stderr
    assert lines(first.stdout)[-1] == (
        "challenges 1–1 of 2; next page: python -m exact challenges --limit 1 --offset 1"
    )


def test_leaderboard_prints_the_ranking_in_order_with_paging_and_csv(server: LiveApp, home: Path) -> None:
    owner = organiser(server)
    score_only_challenge(server, owner, "guess-pi", "Guess pi")
    users = {name: make_user(server.db, name) for name in ("alice", "bob", "carol")}
    for name, value in [("alice", 0.70), ("bob", 0.91), ("carol", 0.55), ("alice", 0.80)]:
        submit_score(server.db, users[name].id, "guess-pi", value)

    page = run_cli("leaderboard", "guess-pi", "--limit", "2", app=server, home=home)
    assert page.returncode == 0, page.stderr
    out = lines(page.stdout)
    assert out[0] == "guess-pi: public leaderboard (best per participant)"
    assert re.split(r"\s{2,}", out[1].strip())[:4] == ["rank", "user", "score", "submitted"]
    assert [line.split()[:3] for line in out[3:5]] == [["1", "bob", "0.91"], ["2", "alice", "0.8"]]
    assert out[-1] == "rows 1–2 of 3; next page: python -m exact leaderboard guess-pi --limit 2 --offset 2"

    last = run_cli("leaderboard", "guess-pi", "--limit", "2", "--offset", "2", app=server, home=home)
    assert last.returncode == 0, last.stderr
    out = lines(last.stdout)
    assert [line.split()[:3] for line in out[3:-1]] == [["3", "carol", "0.55"]]
    assert out[-1] == "rows 3–3 of 3 (last page)."

    every = run_cli("leaderboard", "guess-pi", "--all", app=server, home=home)
    assert every.returncode == 0, every.stderr
    assert "(every submission)" in every.stdout and lines(every.stdout)[-1] == "rows 1–4 of 4 (last page)."

    exported = run_cli("leaderboard", "guess-pi", "--csv", app=server, home=home)
    assert exported.returncode == 0, exported.stderr
    table = list(csv.reader(io.StringIO(exported.stdout)))
    assert table[0][:3] == ["rank", "username", "score"]
    assert [row[:2] for row in table[1:]] == [["1", "bob"], ["2", "alice"], ["3", "carol"]]

    missing = run_cli("leaderboard", "no-such-thing", app=server, home=home)
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and "no-such-thing" in missing.stderr


def test_submit_score_ranks_you_and_the_token_file_is_used_when_the_variable_is_unset(
    server: LiveApp, home: Path
) -> None:
    owner = organiser(server)
    score_only_challenge(server, owner, "guess-pi", "Guess pi")
    alice, bob = make_user(server.db, "alice"), make_user(server.db, "bob")
    submit_score(server.db, bob.id, "guess-pi", 0.5)
    secret = token_for(server, alice).secret

    result = run_cli("submit", "--challenge", "guess-pi", "--score", "0.87", app=server, home=home, token=secret)
    assert result.returncode == 0, result.stderr
    assert "Score 0.87 submitted to guess-pi as alice." in result.stdout
    assert "Rank 1 of 2" in result.stdout
    assert scores_of(server, "guess-pi") == [("bob", 0.5), ("alice", 0.87)]
    assert secret not in result.stdout + result.stderr

    # No EXACT_TOKEN: ~/.config/exact/token (whitespace around it is ignored); others may read it: a warning.
    token_file = home / ".config" / "exact" / "token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(f"  {secret}\n")
    token_file.chmod(0o644)
    from_file = run_cli("submit", "--challenge", "guess-pi", "--score", "0.9", app=server, home=home)
    assert from_file.returncode == 0, from_file.stderr
    assert "as alice" in from_file.stdout and "Rank 1 of 2" in from_file.stdout
    assert f"warning: {token_file} can be read by other users" in from_file.stderr
    token_file.chmod(0o600)
    quiet = run_cli("submit", "--challenge", "guess-pi", "--score", "0.1", app=server, home=home)
    assert quiet.returncode == 0 and "warning" not in quiet.stderr
    assert scores_of(server, "guess-pi")[1:] == [("alice", 0.87), ("alice", 0.9), ("alice", 0.1)]

    # EXACT_TOKEN wins over the file.
    bob_secret = token_for(server, bob).secret
    as_bob = run_cli("submit", "--challenge", "guess-pi", "--score", "0.2", app=server, home=home, token=bob_secret)
    assert as_bob.returncode == 0 and "as bob" in as_bob.stdout

    # A refused value comes back as the server's message, exit code 2; a malformed one is refused locally.
    wrong_kind = run_cli("submit", "--challenge", "nope", "--score", "1", app=server, home=home, token=secret)
    assert wrong_kind.returncode == 2 and wrong_kind.stderr == "error: There is no challenge 'nope'.\n"
    typo = run_cli("submit", "--challenge", "guess-pi", "--score", "0,5", app=server, home=home, token=secret)
    assert typo.returncode == 2 and "Score must be a number such as 0.87" in typo.stderr
    assert len(scores_of(server, "guess-pi")) == 5


def test_a_revoked_token_and_a_missing_token_are_explained(server: LiveApp, home: Path) -> None:
    owner = organiser(server)
    score_only_challenge(server, owner, "guess-pi", "Guess pi")
    alice = make_user(server.db, "alice")
    new = token_for(server, alice)
    api_tokens.revoke_token(server.db, alice.id, new.token.id)

    revoked = run_cli("submit", "--challenge", "guess-pi", "--score", "0.5", app=server, home=home, token=new.secret)
    assert revoked.returncode == 2
    assert revoked.stderr.startswith("error: The API token is missing, malformed, expired or revoked.")
    assert "The token came from EXACT_TOKEN" in revoked.stderr and "Profile page → API tokens" in revoked.stderr
    assert new.secret not in revoked.stdout + revoked.stderr
    # A request that sends a token is never served as a visitor: even a public read says so.
    listing = run_cli("challenges", app=server, home=home, token=new.secret)
    assert listing.returncode == 2 and "revoked" in listing.stderr

    missing = run_cli("submit", "--challenge", "guess-pi", "--score", "0.5", app=server, home=home)
    assert missing.returncode == 2
    assert "needs an API token" in missing.stderr and "Profile page → API tokens" in missing.stderr
    assert "EXACT_TOKEN" in missing.stderr and "/.config/exact/token" in missing.stderr
    assert f"{server.url}/profile" in missing.stderr
    assert scores_of(server, "guess-pi") == []

    read_only = token_for(server, alice, scopes=("read",)).secret
    scopeless = run_cli("submit", "--challenge", "guess-pi", "--score", "0.5", app=server, home=home, token=read_only)
    assert scopeless.returncode == 2 and "'submit' scope" in scopeless.stderr


def test_an_unreachable_server_is_exit_code_3(home: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    result = run_cli("challenges", app=None, home=home, EXACT_URL=f"http://127.0.0.1:{port}")
    assert result.returncode == 3
    assert result.stderr.startswith(f"error: Cannot reach the Exact server at http://127.0.0.1:{port}")
    bad = run_cli("challenges", "--server", "ftp://example.org", app=None, home=home)
    assert bad.returncode == 2 and "must look like http://127.0.0.1:8501" in bad.stderr


# ---------------------------------------------------------------------------------------------------------------
# End to end: uploading attributions


def test_submit_attributions_waits_for_the_score_and_prints_the_summary(
    start_server, home: Path, tmp_path: Path
) -> None:
    app = start_server(env={"EXACT_WORKER": "on"})
    owner = organiser(app)
    masks = server_scored_challenge(app, owner, "tetro-8")
    grace = make_user(app.db, "grace")
    secret = token_for(app, grace).secret
    good = write_npy(tmp_path / "mask-and-noise.npy", masks + 0.1 * np.random.default_rng(0).random(masks.shape))

    args = ("submit", "--challenge", "tetro-8", "--attributions", str(good), "--url", "https://example.org/paper")
    result = run_cli(*args, app=app, home=home, token=secret)
    assert result.returncode == 0, result.stderr
    [stored] = participant_submissions(app)
    assert stored["username"] == "grace" and stored["status"] == "done"
    assert stored["method_name"] == "mask-and-noise" and stored["url"] == "https://example.org/paper"
    out = lines(result.stdout)
    assert re.fullmatch(rf"Submission {stored['id']} \(mask-and-noise\) scored: emd 0\.\d+ \(public mean\)\.", out[0])
    assert re.split(r"\s{2,}", out[1].strip()) == ["split", "metric", "mean", "std", "scored"]
    table = [re.split(r"\s{2,}", line.strip()) for line in out[3:-1]]
    assert {row[0] for row in table} == {"development", "public"}  # no private figures while the challenge runs
    assert {row[1] for row in table} >= {"emd", "mass"}
    assert all(re.fullmatch(r"\d+\.\d{4}", row[2]) and re.fullmatch(r"\d+\.\d{4}", row[3]) for row in table)
    assert out[-1] == f"Result page: {app.url}/result?submission={stored['id']}"
    assert f"Uploaded mask-and-noise.npy as submission {stored['id']}" in result.stderr
    assert secret not in result.stdout + result.stderr

    # --no-wait answers at once with the submission's state.
    again = run_cli(*args, "--method", "Second", "--no-wait", app=app, home=home, token=secret)
    assert again.returncode == 0, again.stderr
    second = participant_submissions(app)[-1]
    assert second["method_name"] == "Second"
    assert re.match(rf"Submission {second['id']} is (queued for scoring|being scored|scored)", again.stdout)


def test_a_bad_file_is_refused_locally_with_the_servers_message_and_nothing_is_sent(
    start_server, home: Path, tmp_path: Path
) -> None:
    app = start_server(env={"EXACT_WORKER": "off"})  # nothing is scored: the last step waits in vain
    owner = organiser(app)
    masks = server_scored_challenge(app, owner, "tetro-8")
    score_only_challenge(app, owner, "guess-pi", "Guess pi")
    grace = make_user(app.db, "grace")
    secret = token_for(app, grace).secret
    n = len(masks)
    objects = np.empty(n, dtype=object)
    objects[:] = [np.ones((8, 8)) for _ in range(n)]
    bad_files = {
        "wrong shape": write_npy(tmp_path / "short.npy", np.ones((n - 1, 8, 8))),
        "pickle": write_npy(tmp_path / "pickled.npy", objects, allow_pickle=True),
        "text": tmp_path / "maps.txt",
        "empty": tmp_path / "empty.npy",
    }
    bad_files["text"].write_text("0.1 0.2 0.3\n")
    bad_files["empty"].write_bytes(b"")
    media, _ = stores(app)
    before = upload_requests(app)

    for what, path in bad_files.items():
        result = run_cli(
            "submit", "--challenge", "tetro-8", "--attributions", str(path), app=app, home=home, token=secret
        )
        # The service the upload endpoint calls refuses the same bytes with this very message.
        with pytest.raises(ValidationError) as server_says:
            intake.submit_attributions(
                app.db, media, grace.id, "tetro-8", UploadedFile(path.name, path.read_bytes()), method_name="x"
            )
        assert result.returncode == 2, (what, result.stdout, result.stderr)
        assert result.stderr == f"error: {server_says.value}\n", what
    assert "expected 14 samples of 8×8" in run_cli(
        "submit", "--challenge", "tetro-8", "--attributions", str(bad_files["wrong shape"]),
        app=app, home=home, token=secret,
    ).stderr  # fmt: skip

    absent = run_cli(
        "submit", "--challenge", "tetro-8", "--attributions", str(tmp_path / "nope.npy"),
        app=app, home=home, token=secret,
    )  # fmt: skip
    assert absent.returncode == 2 and absent.stderr == f"error: No such file: {tmp_path / 'nope.npy'}\n"
    good = write_npy(tmp_path / "good.npy", masks)
    score_only = run_cli(
        "submit", "--challenge", "guess-pi", "--attributions", str(good), app=app, home=home, token=secret
    )
    assert score_only.returncode == 2 and "has no evaluation set: submit a score instead" in score_only.stderr

    assert participant_submissions(app) == []
    assert upload_requests(app) == before == 0
    assert "/submissions" not in app.log()
    assert not (app.media_root / "submissions").exists()

    # Sent anyway (past the local check), the server refuses the file with the same message: a 422 problem.
    with client.ExactClient(app.url, secret) as api:
        with pytest.raises(client.ClientError) as refused:
            api.upload_attributions("tetro-8", bad_files["wrong shape"], method_name="Short")
        assert refused.value.status == 422 and refused.value.exit_code == 2
        with pytest.raises(ValidationError) as local:
            client.check_attributions_file(
                bad_files["wrong shape"], api.challenge("tetro-8")["evaluation"], max_bytes=MAX_BYTES
            )
        assert refused.value.detail == str(local.value)
    assert upload_requests(app) == 1 and participant_submissions(app) == []

    # With no scorer running, the wait is bounded and says what it waited for and where the result will be.
    waiting = run_cli(
        "submit", "--challenge", "tetro-8", "--attributions", str(good), "--wait-timeout", "1",
        app=app, home=home, token=secret,
    )  # fmt: skip
    [queued] = participant_submissions(app)
    assert waiting.returncode == 3, waiting.stderr
    assert f"Waiting for submission {queued['id']}: queued for scoring" in waiting.stderr
    assert waiting.stderr.endswith(
        f"error: Submission {queued['id']} is still queued for scoring after 1 s; it goes on on the server: see "
        f"{app.url}/result?submission={queued['id']} later.\n"
    )


# ---------------------------------------------------------------------------------------------------------------
# exact.client against the live server


def test_the_client_uploads_once_per_request_key_and_follows_the_result(start_server, tmp_path: Path) -> None:
    app = start_server(env={"EXACT_WORKER": "on"})
    owner = organiser(app)
    masks = server_scored_challenge(app, owner, "tetro-8")
    grace = make_user(app.db, "grace")
    path = write_npy(tmp_path / "perfect.npy", masks)
    seen: list[tuple[int, int]] = []
    updates: list[str] = []

    with client.ExactClient(app.url, token_for(app, grace).secret) as api:
        assert api.me()["username"] == "grace"
        assert api.challenge("tetro-8")["evaluation"]["shape"] == [14, 8, 8]
        first = api.upload_attributions(
            "tetro-8", path, method_name="Perfect", request_key="key-1", progress=lambda s, t: seen.append((s, t))
        )
        repeated = api.upload_attributions("tetro-8", path, method_name="Perfect", request_key="key-1")
        assert repeated["id"] == first["id"]
        assert seen[-1] == (path.stat().st_size, path.stat().st_size)
        assert [s for s, _ in seen] == sorted(s for s, _ in seen)
        result = api.wait_for_result(
            first["id"], timeout=120, poll=0.2, on_update=lambda s: updates.append(s["status"])
        )
        assert result["status"] == "done" and result["summary"]
        assert updates[-1] == "done" and set(updates) <= {"queued", "running", "done"}
        assert len(participant_submissions(app)) == 1


def test_too_many_requests_are_waited_out_twice_then_refused(start_server) -> None:
    app = start_server(env={"EXACT_API_RATE_PER_MINUTE": "2"})
    naps: list[float] = []
    notices: list[str] = []
    with client.ExactClient(app.url, notice=notices.append, sleep=naps.append) as api:  # naps: not really slept
        api.challenges()
        api.challenges()
        with pytest.raises(client.ClientError) as refused:
            api.challenges()
    assert refused.value.status == 429 and refused.value.exit_code == 2
    assert "Too many requests" in refused.value.detail
    assert len(naps) == client.RATE_LIMIT_RETRIES and all(0 < nap <= 60 for nap in naps)
    assert all("slow down" in notice for notice in notices)


# ---------------------------------------------------------------------------------------------------------------
# The pure parts


def test_the_token_comes_from_the_variable_then_the_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert client.resolve_token({}, home=home) is None
    path = client.token_file_path(home)
    assert path == home / ".config" / "exact" / "token"
    path.parent.mkdir(parents=True)
    path.write_text("\n  exact_fromfile \n")
    path.chmod(0o600)
    from_file = client.resolve_token({}, home=home)
    assert from_file is not None
    assert (from_file.token, from_file.source, from_file.warning) == ("exact_fromfile", str(path), None)
    assert "exact_fromfile" not in repr(from_file)
    from_env = client.resolve_token({"EXACT_TOKEN": " exact_fromenv\n"}, home=home)
    assert from_env is not None and (from_env.token, from_env.source) == ("exact_fromenv", "EXACT_TOKEN")
    assert client.resolve_token({"EXACT_TOKEN": "  "}, home=home).token == "exact_fromfile"  # blank: not set

    path.chmod(0o640)
    shared = client.resolve_token({}, home=home)
    assert shared is not None and shared.warning is not None and f"chmod 600 {path}" in shared.warning

    path.write_text("   \n")
    with pytest.raises(ValidationError, match="is empty"):
        client.resolve_token({}, home=home)
    path.write_text("exact_two words")
    with pytest.raises(ValidationError, match="not a valid API token") as bad:
        client.resolve_token({}, home=home)
    assert "two words" not in str(bad.value)


def test_the_token_file_is_found_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("EXACT_TOKEN", raising=False)
    (tmp_path / ".config" / "exact").mkdir(parents=True)
    (tmp_path / ".config" / "exact" / "token").write_text("exact_abc")
    found = client.resolve_token()
    assert found is not None and found.token == "exact_abc"
    monkeypatch.setenv("EXACT_TOKEN", "exact_env")
    assert client.resolve_token().token == "exact_env"
    assert "~" not in client.missing_token_message("http://h:1") and str(tmp_path) in client.missing_token_message("x")


def test_the_server_comes_from_the_flag_then_the_variable_then_the_default() -> None:
    assert client.resolve_url(None, {}) == "http://127.0.0.1:8501"
    assert client.resolve_url(None, {"EXACT_URL": "https://exact.example.org/"}) == "https://exact.example.org"
    assert client.resolve_url("http://other:9000", {"EXACT_URL": "https://exact.example.org"}) == "http://other:9000"
    assert client.resolve_url("", {"EXACT_URL": " http://h:1 "}) == "http://h:1"
    for wrong in ("example.org", "ftp://example.org", "http://h:1/?q=1", "http://"):
        with pytest.raises(ValidationError, match="must look like"):
            client.resolve_url(wrong, {})


def test_the_client_never_shows_its_token() -> None:
    with client.ExactClient("http://127.0.0.1:1", "exact_secret") as api:
        assert "exact_secret" not in repr(api) and "hidden" in repr(api)


def test_page_text_says_where_the_rows_are_and_how_to_see_the_next_page() -> None:
    command = "python -m exact leaderboard c --offset 50"
    text = client.page_text(offset=0, shown=50, total=120, next_offset=50, next_command=command)
    assert text == f"rows 1–50 of 120; next page: {command}"
    last = client.page_text(offset=100, shown=20, total=120, next_offset=None, next_command="unused")
    assert last == "rows 101–120 of 120 (last page)."
    assert client.page_text(offset=0, shown=0, total=0, next_offset=None, next_command="") == "no rows."
    past = client.page_text(offset=500, shown=0, total=120, next_offset=None, next_command="", what="challenges")
    assert past == "no challenges from offset 500: there are 120 in all."


def test_tables_are_aligned_numbers_right_text_left_and_terminal_safe() -> None:
    text = client.format_table(
        ["rank", "user", "score", "submitted"],
        [
            [1, "bob", 0.91, None],
            [10, "alice\x1b[31m", 0.123456789, "2025-05-16T12:34:56+00:00"],
        ],
    )
    header, rule, first, second = text.splitlines()
    assert header.split() == ["rank", "user", "score", "submitted"]
    assert rule.split() == ["----", "----------", "--------", "----------------"]
    assert first == "   1  bob             0.91  -"  # numbers right, text left, None as "-"
    assert second.startswith("  10  alice?[31m  0.123457  ")  # an escape sequence cannot reach the terminal
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d$", second)  # local time, to the minute
    assert client.cell("x" * 100, width=10) == "x" * 9 + "…" and client.cell(True) == "yes"


def test_leaderboard_and_challenge_tables_from_answers() -> None:
    headers, rows = client.leaderboard_table(
        {
            "columns": ["rank", "username", "method", "score", "vs_random", "mass", "created_at", "submissions",
                        "submission_id"],
            "rows": [{"rank": 1, "username": "bob", "method": "m", "score": 0.5, "vs_random": 0.1, "mass": 0.2,
                      "created_at": None, "submissions": 2, "submission_id": 7}],
        }
    )  # fmt: skip
    assert headers == ["rank", "user", "method", "score", "vs random", "mass", "submitted", "submissions"]
    assert rows == [[1, "bob", "m", 0.5, 0.1, 0.2, None, 2]]
    headers, rows = client.challenges_table(
        {"items": [{"challenge_id": "a", "title": "A", "participants": 3, "scored_on_server": True}]}
    )
    assert rows == [["a", "A", 3, "server-scored"]]
    submission = {"summary": [{"split": "public", "metric": "emd", "mean": 0.51234, "std": 0.1, "scored": 9}]}
    assert client.summary_table(submission)[1] == [["public", "emd", "0.5123", "0.1000", 9]]
    assert client.describe_status({"status": "running", "progress": {"done": 4, "total": 14}}) == (
        "being scored (4 of 14 samples)"
    )
    assert client.describe_status({"status": "queued", "progress": {"done": 0, "total": 14}}) == "queued for scoring"


def test_the_readme_quick_start_for_python_works_as_written(start_server, tmp_path: Path) -> None:
    """The three lines of README "Submitting from Python", with the server, a token and a challenge filled in."""
    readme = (REPO_ROOT / "README.md").read_text()
    [snippet] = re.findall(r"```python\n(from exact\.client import ExactClient\n.*?)```", readme, flags=re.S)
    assert len(snippet.strip().splitlines()) == 3
    app = start_server(env={"EXACT_WORKER": "on"})
    masks = server_scored_challenge(app, organiser(app), "tetro-8")
    write_npy(tmp_path / "attributions.npy", masks)
    code = (
        snippet.replace("http://127.0.0.1:8501", app.url)
        .replace("exact_…", token_for(app, make_user(app.db, "grace")).secret)
        .replace("CHALLENGE_ID", "tetro-8")
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EXACT_")} | {"PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [str(PYTHON), "-c", code], capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=180
    )
    assert done.returncode == 0, done.stderr
    assert "'status': 'done'" in done.stdout and "'summary'" in done.stdout
    assert [s["status"] for s in participant_submissions(app)] == ["done"]
