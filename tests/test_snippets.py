"""Submitting from code: the text ui/snippets.py builds, and the challenge page's "From code" tab that shows it.

The unit tests check the commands as a POSIX shell would split them (shlex.split), so quoting mistakes show up as
wrong arguments; the page tests run app.py through AppTest on a real scratch database, for a score-only and a
server-scored challenge, with and without the browser's address in st.context.
"""

from __future__ import annotations

import shlex
from unittest.mock import MagicMock

import pytest

from exact import evaluation_sets
from exact.challenges import ChallengeForm, EvaluationChoice, create_challenge
from exact.storage import MediaStorage
from exact.xaitris import BenchmarkSpec
from tests.conftest import make_user
from tests.pages_helpers import log_in_state, run, title, values
from ui import snippets
from ui.snippets import DEFAULT_BASE_URL, base_url, cli_command, curl_command, docs_url, environment

BASE = "https://exact.example.org:8443"
AUTH = ["-H", "Authorization: Bearer $EXACT_TOKEN"]  # as the shell passes it (after expanding $EXACT_TOKEN)


# --- base URL ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://exact.example.org:8443/challenge", "https://exact.example.org:8443"),
        ("http://localhost:8501/", "http://localhost:8501"),
        ("http://127.0.0.1:8501/challenge?challenge=credit#top", "http://127.0.0.1:8501"),
        ("https://Exact.Example.org/some/deep/path", "https://exact.example.org"),
        ("HTTPS://exact.example.org", "https://exact.example.org"),
        ("http://[::1]:8501/challenge", "http://[::1]:8501"),
    ],
)
def test_base_url_keeps_scheme_host_and_port(url, expected):
    assert base_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        MagicMock(),  # what st.context can be under AppTest
        42,
        b"http://example.org",
        "example.org:8501",
        "ftp://example.org/",
        "javascript:alert(1)",
        "http://",
        "http:///path",
        "http://user:pw@example.org/",  # credentials never go into a copy-paste command
        "http://example.org:99999/",
        "http://example.org:port/",
        "http://exa mple.org/",
        "http://example.org;rm -rf ~/",
        "http://$(reboot)/",
        "http://example.org`id`/",
    ],
)
def test_base_url_falls_back_for_anything_else(url):
    assert base_url(url) == DEFAULT_BASE_URL == "http://127.0.0.1:8501"


def test_browser_base_url_falls_back_outside_a_browser_session():
    assert snippets.browser_base_url() == DEFAULT_BASE_URL  # no script run context here: st.context.url is None


# --- commands ------------------------------------------------------------------------------------------------------


def test_score_only_commands():
    assert cli_command("credit", server_scored=False) == "python -m exact submit --challenge credit --score 0.87"
    assert curl_command("credit", server_scored=False, base=BASE) == (
        'curl -H "Authorization: Bearer $EXACT_TOKEN" -H "Content-Type: application/json" '
        f"-d '{{\"score\": 0.87}}' {BASE}/api/v1/challenges/credit/scores"
    )
    assert shlex.split(curl_command("credit", server_scored=False, base=BASE)) == [
        "curl",
        *AUTH,
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"score": 0.87}',
        f"{BASE}/api/v1/challenges/credit/scores",
    ]


def test_server_scored_commands():
    assert cli_command("tris-linear", server_scored=True) == (
        'python -m exact submit --challenge tris-linear --attributions attributions.npy --method "My method"'
    )
    assert shlex.split(cli_command("tris-linear", server_scored=True)) == [
        "python",
        "-m",
        "exact",
        "submit",
        "--challenge",
        "tris-linear",
        "--attributions",
        "attributions.npy",
        "--method",
        "My method",
    ]
    assert curl_command("tris-linear", server_scored=True, base=BASE) == (
        'curl -H "Authorization: Bearer $EXACT_TOKEN" -F method_name="My method" -F file=@attributions.npy '
        f"{BASE}/api/v1/challenges/tris-linear/submissions"
    )
    assert shlex.split(curl_command("tris-linear", server_scored=True, base=BASE)) == [
        "curl",
        *AUTH,
        "-F",
        "method_name=My method",
        "-F",
        "file=@attributions.npy",
        f"{BASE}/api/v1/challenges/tris-linear/submissions",
    ]


@pytest.mark.parametrize("challenge_id", ["credit", "tris-linear", "XAI_TRIS-64x64", "a", "0-start"])
def test_ids_made_here_need_no_quoting(challenge_id):
    for scored in (True, False):
        assert f"--challenge {challenge_id} " in cli_command(challenge_id, server_scored=scored)
        assert f"/api/v1/challenges/{challenge_id}/" in curl_command(challenge_id, server_scored=scored, base=BASE)
        assert "'" not in cli_command(challenge_id, server_scored=scored)


@pytest.mark.parametrize("challenge_id", ["it's mine", "a b", "$(reboot)", "x;rm -rf ~", "über/../x", "-rf"])
def test_odd_ids_from_django_are_quoted_for_the_shell_and_the_url(challenge_id):
    for scored in (True, False):
        words = shlex.split(cli_command(challenge_id, server_scored=scored))
        if challenge_id.startswith("-"):  # attached, so argparse cannot take it for an option
            assert f"--challenge={challenge_id}" in words
        else:
            assert words[words.index("--challenge") + 1] == challenge_id  # one argument, exactly the id
        url = shlex.split(curl_command(challenge_id, server_scored=scored, base=BASE))[-1]
        path = url.removeprefix(f"{BASE}/api/v1/challenges/")
        segment, _, endpoint = path.partition("/")
        assert endpoint == ("submissions" if scored else "scores")
        assert all(c.isalnum() or c in "%-_.~" for c in segment), segment  # percent-encoded: stays one segment


def test_environment_and_docs():
    text = environment(BASE)
    assert text.splitlines()[0] == f"export EXACT_URL={BASE}"
    assert text.splitlines()[1].startswith('export EXACT_TOKEN="$(cat ~/.config/exact/token)"')
    assert docs_url(BASE) == f"{BASE}/api/v1/docs"
    assert environment(DEFAULT_BASE_URL).startswith("export EXACT_URL=http://127.0.0.1:8501\n")


# --- the challenge page --------------------------------------------------------------------------------------------


@pytest.fixture
def challenges(db, media_root, private_root):
    """A score-only challenge and a server-scored (ground-truth) one; the superuser closes first-run set-up."""
    make_user(db, "root", superuser=True)
    olivia = make_user(db, "olivia", staff=True)
    media = MediaStorage(media_root, max_bytes=1024 * 1024)
    private = MediaStorage(private_root, max_bytes=1024 * 1024)
    create_challenge(db, media, olivia.id, ChallengeForm("Credit attribution", "Tabular data.", "credit"), {})
    prepared = evaluation_sets.prepare_benchmark(BenchmarkSpec(scenario="linear", size=8, n_samples=40, seed=3))
    create_challenge(
        db,
        media,
        olivia.id,
        ChallengeForm("Ground truth", "Explain the *tetrominoes*.", "gt_8x8"),
        {},
        evaluation=EvaluationChoice(prepared=prepared, private=private),
    )
    return {"pat": make_user(db, "pat")}


def _challenge_page(app, db, challenge_id, *, user=None, url=None):
    at = app()
    if user is not None:
        log_in_state(at, db, user.id)
    if url is not None:
        at.context["url"] = url
    run(at)
    at.query_params["challenge"] = challenge_id
    return run(at.switch_page("app_pages/challenge.py"))


def _from_code(at):
    tabs = {tab.label: tab for tab in at.tabs}
    assert list(tabs) == ["On the website", "From code"]
    return tabs["From code"]


def test_score_only_challenge_page_shows_the_score_commands(app, db, challenges):
    at = _challenge_page(app, db, "credit")
    assert title(at) == "Credit attribution"
    tab = _from_code(at)
    assert values(tab.code) == [
        environment(DEFAULT_BASE_URL),  # AppTest has no browser address: the local default
        "python -m exact submit --challenge credit --score 0.87",
        'curl -H "Authorization: Bearer $EXACT_TOKEN" -H "Content-Type: application/json" '
        "-d '{\"score\": 0.87}' http://127.0.0.1:8501/api/v1/challenges/credit/scores",
    ]
    text = " ".join(values(tab.markdown) + values(tab.caption))
    assert "[http://127.0.0.1:8501/api/v1/docs](http://127.0.0.1:8501/api/v1/docs)" in text
    assert "Tokens are created on your profile page once you are logged in." in text  # a visitor: no profile link
    assert not tab.get("page_link")
    assert "Log in to submit" in [link.label for link in at.get("page_link")]  # the website tab is unchanged


def test_server_scored_challenge_page_shows_the_upload_commands_at_the_browsers_address(app, db, challenges):
    at = _challenge_page(app, db, "gt_8x8", user=challenges["pat"], url=f"{BASE}/challenge")
    assert title(at) == "Ground truth"
    tab = _from_code(at)
    assert values(tab.code) == [
        environment(BASE),
        'python -m exact submit --challenge gt_8x8 --attributions attributions.npy --method "My method"',
        'curl -H "Authorization: Bearer $EXACT_TOKEN" -F method_name="My method" -F file=@attributions.npy '
        f"{BASE}/api/v1/challenges/gt_8x8/submissions",
    ]
    assert f"[{BASE}/api/v1/docs]({BASE}/api/v1/docs)" in " ".join(values(tab.markdown))
    assert [link.label for link in tab.get("page_link")] == ["Create a token on your profile page"]
    assert "Submit a score" in [link.label for link in at.get("page_link")]
    assert all(not m.proto.allow_html for m in at.markdown)
