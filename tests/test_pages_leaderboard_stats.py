"""The leaderboard page's statistics, method cards, normalised view and charts, through AppTest on a real database,
for every role; and the hand-over to the presentation view (``?present=1``)."""

from __future__ import annotations

import json

import pytest

from exact import statistics
from exact.challenges import ChallengeForm, create_challenge
from exact.evaluation_sets import BASELINES
from exact.metrics import METRICS
from exact.scores import leaderboard, submit_score
from tests.pages_helpers import one, run, values
from tests.test_pages_scoring import _open
from tests.test_statistics import CID, board_world, people, stores  # noqa: F401 - fixtures

ROLES = ["visitor", "pat", "oscar", "olivia", "root"]  # visitor, participant, other organiser, organiser, admin


def _user(people, role):  # noqa: F811 - the fixture's value
    return None if role == "visitor" else people[role]


def _charts(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _figures(node) -> list[float]:
    if isinstance(node, bool):
        return []
    if isinstance(node, int | float):
        return [float(node)]
    if isinstance(node, dict):
        return [v for value in node.values() for v in _figures(value)]
    if isinstance(node, list):
        return [v for value in node for v in _figures(value)]
    return []


def _expected(db, viewer_id=None):
    return statistics.board_statistics(db, viewer_id, leaderboard(db, CID))


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_intervals_tied_ranks_and_method_cards(app, db, board_world, people, role):  # noqa: F811
    user = _user(people, role)
    at = _open(app, db, user, "app_pages/leaderboard.py", challenge=CID)
    assert not at.error, values(at.error)
    expected = _expected(db, user.id if user else None)
    table = at.dataframe[0].value
    assert list(table["username"]) == list(expected.table["username"])
    assert list(table.columns[:6]) == ["rank", "group", "username", "score", "ci", "method"]
    assert list(table["group"]) == list(expected.table["group"]) == ["1", "2", "3–4", "3–4"]
    for shown, (low, high) in zip(table["ci"], zip(expected.table["ci_low"], expected.table["ci_high"], strict=True),
                                  strict=True):  # fmt: skip
        assert shown == f"{low:.4f}–{high:.4f}"
    assert at.dataframe[0].proto.placeholder == ""  # a missing figure is an empty cell, not "None"
    styled = "background-color" in at.dataframe[0].proto.arrow_data.styler.styles
    assert styled is (role == "pat"), "only a viewer with a row on the page has it highlighted"
    # Result links only where this viewer can open the result page.
    own = {"pat": ["pat"], "olivia": ["pat", "quinn", "rae", "sam"], "root": ["pat", "quinn", "rae", "sam"]}.get(role)
    if own is None:
        assert "result" not in table.columns, "no links that end in 'only the submitter'"
    else:
        linked = [u for u, link in zip(table["username"], table["result"], strict=True) if link]
        assert sorted(linked) == sorted(own)
    baselines = at.dataframe[1].value
    assert all(link.startswith("result?submission=") for link in baselines["result"])
    # The explanation of the statistics, and the four charts (ranking, critical difference, time, distribution).
    assert any(c.startswith("95 % CI: BCa bootstrap of the mean over each row's public samples") for c in values(
        at.caption))  # fmt: skip
    assert [t.label for t in at.tabs] == [
        "Ranking",
        "Critical difference",
        "Best score over time",
        "Score distribution",
    ]
    ranking, cd, _, _ = _charts(at)
    bar = ranking["data"][0]
    assert bar["error_x"]["type"] == "data" and len(bar["x"]) == 4
    assert "p vs next (Holm)" in bar["customdata"][0] and "rank group 1" in bar["customdata"][0]
    low, high = ranking["layout"]["xaxis"]["range"]
    assert low > 0.3, "the axis is on the data's range"
    assert cd["layout"]["title"]["text"].startswith("Critical difference over 3 metrics")
    # Chart JSON leaves the server too: its data carries rounded figures only.
    for chart in (ranking, cd):
        assert all(v == round(v, 4) for v in _figures(chart["data"])), chart["layout"]["title"]["text"]


def test_the_method_card_shows_the_submitters_public_text_and_links_that_lead_somewhere(app, db, board_world, people):  # noqa: F811
    at = _open(app, db, people["quinn"], "app_pages/leaderboard.py", challenge=CID)
    picker = at.selectbox(key=f"leaderboard_card_{CID}")
    assert picker.value == board_world["made"]["quinn"].id  # the viewer's own row first
    assert any("Mask and more noise" in m for m in values(at.markdown))
    links = [link.label for link in at.get("page_link")]
    assert "Full result" in links and "Compare with another method" in links
    # Another participant's card: their text, no link to a result page quinn cannot open.
    picker.set_value(board_world["made"]["pat"].id)
    run(at)
    assert any("Mask and a little noise" in m for m in values(at.markdown))
    assert any(c.startswith("by pat") for c in values(at.caption))
    assert any("tied ranks 1" in c and "p vs next row" in c for c in values(at.caption))
    links = [link.label for link in at.get("page_link")]
    assert "Full result" not in links and "Compare with another method" in links
    # A baseline's card explains the baseline.
    sobel = next(c for c in _expected(db).cards.values() if c.method == BASELINES["sobel"])
    at.selectbox(key=f"leaderboard_card_{CID}").set_value(sobel.submission_id)
    run(at)
    assert "Baseline computed by the server" in values(at.caption)
    assert statistics.BASELINE_DESCRIPTIONS[BASELINES["sobel"]] in [t.value for t in at.text]
    assert "Full result" in [link.label for link in at.get("page_link")]  # baselines are public


def test_a_description_and_url_are_shown_as_plain_text_and_a_button(app, db, stores, board_world, people):  # noqa: F811
    from exact import intake, scoring
    from exact.storage import UploadedFile
    from tests.test_pages_scoring import _npy

    media, private = stores
    masks = board_world["prepared"].masks
    made = intake.submit_attributions(
        db, media, people["oscar"].id, CID, UploadedFile("a.npy", _npy(masks * 2)), method_name="*Bold* [claim]",
        description="See **our** paper", url="https://example.org/paper",
    )  # fmt: skip
    scoring.process_submission(db, media, private, made.id)
    at = _open(app, db, None, "app_pages/leaderboard.py", challenge=CID)
    at.selectbox(key=f"leaderboard_card_{CID}").set_value(made.id)
    run(at)
    assert "See **our** paper" in [t.value for t in at.text]  # st.text: never Markdown
    assert any(m == r"**\*Bold\* \[claim\]**" for m in values(at.markdown))  # escaped inside the bold name
    buttons = at.get("link_button")
    assert [(b.proto.label, b.proto.url) for b in buttons] == [("Paper / code", "https://example.org/paper")]


def test_the_normalised_view_puts_random_at_zero_and_the_ground_truth_at_one(app, db, board_world):  # noqa: F811
    at = _open(app, db, None, "app_pages/leaderboard.py", challenge=CID)
    scale = at.get("button_group")[0]
    assert scale.proto.label == "Values"
    expected = _expected(db)
    at.get("button_group")[0].set_value("normalised")
    run(at)
    table, baselines = (frame.value for frame in at.dataframe)
    assert list(table["score"]) == list(expected.table["norm_score"])
    assert list(table["mass"]) == list(expected.table["norm_mass"])
    by_method = baselines.set_index("method")
    assert by_method.loc[BASELINES["random"], "score"] == 0.0
    assert by_method.loc[BASELINES["ground_truth"], "score"] == 1.0
    assert "vs_random" not in baselines.columns
    columns = json.loads(at.dataframe[0].proto.columns)
    assert "normalised" in columns["score"]["help"]
    ranking = _charts(at)[0]
    assert ranking["data"][0]["x"] == list(expected.table["norm_score"])
    assert ranking["layout"]["xaxis"]["title"]["text"] == f"{METRICS['emd'].label} (normalised)"


def test_the_viewers_row_is_highlighted(app, db, board_world, people):  # noqa: F811
    at = _open(app, db, people["rae"], "app_pages/leaderboard.py", challenge=CID)
    styles = at.dataframe[0].proto.arrow_data.styler.styles
    assert "background-color" in styles
    assert "Your row is highlighted." in values(at.caption)
    ranking = _charts(at)[0]
    rae_row = list(at.dataframe[0].value["username"]).index("rae")
    colours = ranking["data"][0]["marker"]["color"]
    assert colours[rae_row] == "#F58518" and colours.count("#F58518") == 1
    visitor = _open(app, db, None, "app_pages/leaderboard.py", challenge=CID)
    assert "Your row is highlighted." not in values(visitor.caption)


def test_a_score_only_challenge_says_it_has_no_per_sample_values(app, db, stores, people):  # noqa: F811
    create_challenge(db, stores[0], people["olivia"].id, ChallengeForm("Typed", "Scores.", "typed"), {})
    for name, score in (("pat", 0.81), ("quinn", 0.92), ("rae", 0.85)):
        submit_score(db, people[name].id, "typed", score)
    at = _open(app, db, None, "app_pages/leaderboard.py", challenge="typed")
    assert not at.error, values(at.error)
    assert statistics.SCORE_ONLY_NOTE in values(at.caption)
    table = at.dataframe[0].value
    assert list(table.columns) == ["rank", "username", "score", "created_at", "submissions"]
    assert [t.label for t in at.tabs] == ["Ranking", "Best score over time", "Score distribution"]
    assert not at.get("button_group"), "no normalised view without baselines"
    ranking = _charts(at)[0]
    low, high = ranking["layout"]["xaxis"]["range"]
    assert 0.7 < low < 0.81 and 0.92 < high < 1.0  # 0.81 and 0.92 look different
    assert [a["text"] for a in ranking["layout"]["annotations"]] == ["0.92", "0.85", "0.81"]
    assert json.loads(at.dataframe[0].proto.columns)["score"]["label"] == "Best score ↑"


def test_the_challenge_page_links_only_results_the_viewer_can_open(app, db, board_world, people):  # noqa: F811
    at = _open(app, db, None, "app_pages/challenge.py", challenge=CID)
    table = at.dataframe[0].value
    assert "result" not in table.columns and "ci" in table.columns
    at = _open(app, db, people["pat"], "app_pages/challenge.py", challenge=CID)
    table = at.dataframe[0].value
    assert [u for u, link in zip(table["username"], table["result"], strict=True) if link] == ["pat"]


def test_present_hands_over_to_the_presentation_view_with_the_same_query(app, db, board_world):  # noqa: F811
    at = app()
    run(at)
    at.query_params.clear()
    at.query_params["challenge"] = CID
    at.query_params["present"] = "1"
    at.query_params["top"] = "5"
    at.switch_page("app_pages/leaderboard.py").run()
    assert "Leaderboard" not in values(at.title), "the presentation view ran instead"
    assert "present" not in at.query_params
    assert at.query_params["challenge"] == CID and at.query_params["top"] == "5"


def test_without_present_the_leaderboard_stays(app, db, board_world):  # noqa: F811
    at = _open(app, db, None, "app_pages/leaderboard.py", challenge=CID, present="0")
    assert values(at.title) == ["Leaderboard"]
    assert one(at.toggle, "Show all submissions")
