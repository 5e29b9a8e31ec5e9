"""The same scenarios through the submit page (AppTest) and through the API (HTTP): both refuse the same things
with the same message, because both call the same services. Server and AppTest share one scratch database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from exact.challenges import ChallengeForm, create_challenge
from exact.competition import Rules, update_rules
from exact.storage import MediaStorage
from tests.api.conftest import bearer, token_for
from tests.conftest import make_user
from tests.live_server import _start_app
from tests.pages_helpers import click, log_in_state, one, rows, run, values

CHALLENGE = "faithful"


@pytest.fixture
def both(app, db, db_url, tmp_path, media_root):
    """(AppTest factory, httpx client of a live server on the same database, participant, organiser)."""
    make_user(db, "root", superuser=True)
    organiser, pat = make_user(db, "olivia", staff=True), make_user(db, "pat")
    rules = Rules(daily_limit=2, metric_name="Faithfulness", min_value=0.0, max_value=1.0)
    create_challenge(db, MediaStorage(media_root, max_bytes=1 << 20), organiser.id,
                     ChallengeForm("Faithful", "Two a day.", CHALLENGE), {}, rules=rules)  # fmt: skip
    server = _start_app(db_url, tmp_path / "server", {"EXACT_API_RATE_PER_MINUTE": "100000"})
    client = httpx.Client(base_url=f"{server.url}/api/v1", headers=bearer(token_for(server, pat)), timeout=30)
    yield app, client, pat, organiser
    client.close()
    server.stop()


def _submit_page(app, db, user):
    at = app()
    log_in_state(at, db, user.id)
    run(at)
    at.query_params["challenge"] = CHALLENGE
    return run(at.switch_page("app_pages/submit.py"))


def _page_submit(at, text: str):
    at.text_input(key="submit_score").input(text)
    at.checkbox(key="submit_confirm").set_value(True)
    return click(at, "Submit score")


def _api_submit(client: httpx.Client, score) -> httpx.Response:
    return client.post(f"/challenges/{CHALLENGE}/scores", json={"score": score})


def _stored(db) -> int:
    return len(rows(db, "SELECT id FROM api_score WHERE challenge_id = :c", c=CHALLENGE))


@pytest.mark.parametrize("text", ["1.5", "-0.1", "abc", "1e999", "0x10"])
def test_a_refused_score_gets_the_same_message_on_both(both, db, text):
    app, client, pat, _ = both
    at = _page_submit(_submit_page(app, db, pat), text)
    [page_message] = values(at.error)
    response = _api_submit(client, text)
    assert response.status_code == 422
    assert response.json()["detail"] == page_message
    assert _stored(db) == 0


def test_the_daily_limit_is_shared_and_enforced_on_both(both, db):
    app, client, pat, _ = both
    at = _page_submit(_submit_page(app, db, pat), "0.4")  # one through the page
    assert not at.error, values(at.error)
    assert _api_submit(client, 0.5).status_code == 201  # one through the API: the day's two are used
    allowance = client.get(f"/challenges/{CHALLENGE}/allowance").json()
    assert allowance["today_left"] == 0 and allowance["may_submit"] is False
    page = _submit_page(app, db, pat)
    assert any(c.startswith("Submissions: 0 left today") for c in values(page.caption))
    assert one(page.button, "Submit score").disabled
    refused = _api_submit(client, 0.6)
    assert refused.status_code == 422 and "today's 2 submissions" in refused.json()["detail"]
    assert _stored(db) == 2


def test_a_closed_challenge_refuses_both(both, db):
    app, client, pat, organiser = both
    update_rules(
        db,
        organiser.id,
        CHALLENGE,
        Rules(
            daily_limit=2,
            metric_name="Faithfulness",
            min_value=0.0,
            max_value=1.0,
            ends_at=datetime.now(UTC) - timedelta(hours=1),
        ),
    )
    page = _submit_page(app, db, pat)
    assert values(page.info)[0].startswith("Closed")
    assert one(page.button, "Submit score").disabled
    refused = _api_submit(client, 0.5)
    assert refused.status_code == 422 and "submissions are no longer accepted" in refused.json()["detail"]
    assert client.get(f"/challenges/{CHALLENGE}").json()["rules"]["phase"] == "closed"
    assert _stored(db) == 0
