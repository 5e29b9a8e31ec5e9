"""The "Compare methods" page through AppTest on a real database, for every role: paired aggregates over the
public (or revealed private) samples, per-sample pairs only where exact.permissions allows them, deep links."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from db import competition as competition_sql
from exact import statistics
from exact.challenges import ChallengeForm, create_challenge
from exact.competition import get_rules
from exact.evaluation_sets import BASELINES
from exact.moderation import moderate
from exact.scores import submit_score
from tests.pages_helpers import run, values
from tests.test_pages_scoring import _open
from tests.test_statistics import CID, _stored, board_world, people, stores  # noqa: F401 - fixtures

ROLES = ["visitor", "pat", "oscar", "olivia", "root"]
PAGE = "app_pages/compare.py"


def _user(people, role):  # noqa: F811
    return None if role == "visitor" else people[role]


def _charts(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _decode(values_or_typed) -> list[float]:
    if isinstance(values_or_typed, dict):  # plotly's typed array
        array = np.frombuffer(base64.b64decode(values_or_typed["bdata"]), dtype=np.dtype(values_or_typed["dtype"]))
        return array.astype(float).tolist()
    return [float(v) for v in values_or_typed]


def _figures(node) -> list[float]:
    if isinstance(node, bool):
        return []
    if isinstance(node, int | float):
        return [float(node)]
    if isinstance(node, dict):
        if "bdata" in node:
            return _decode(node)
        return [v for value in node.values() for v in _figures(value)]
    if isinstance(node, list):
        return [v for value in node for v in _figures(value)]
    return []


@pytest.mark.parametrize("role", ROLES)
def test_every_role_compares_the_top_two_with_paired_aggregates(app, db, board_world, people, role):  # noqa: F811
    user = _user(people, role)
    made = board_world["made"]
    at = _open(app, db, user, PAGE, challenge=CID)
    assert not at.error, values(at.error)
    assert values(at.title) == ["Compare methods"]
    assert at.selectbox(key="compare_a").value == made["pat"].id  # rank 1 against rank 2 by default
    assert at.selectbox(key="compare_b").value == made["quinn"].id
    assert at.query_params["a"] == str(made["pat"].id) and at.query_params["b"] == str(made["quinn"].id)
    expected = statistics.compare(db, user.id if user else None, CID, made["pat"].id, made["quinn"].id)
    table = at.dataframe[0].value
    assert list(table.columns) == ["metric", "difference", "ci", "win_rate", "p_value", "n", "mean_a", "mean_b"]
    assert list(table["metric"]) == ["EMD ↑", "Mass ↑", "Precision ↑", "AUC ↑"]
    assert list(table["difference"]) == list(expected.metrics["difference"])
    assert list(table["p_value"]) == list(expected.metrics["p_value"])
    assert list(table["win_rate"]) == list(expected.metrics["win_rate"])
    assert at.dataframe[0].proto.placeholder == ""
    # Both cards, with the submitters' own text.
    assert any("Mask and a little noise" in m for m in values(at.markdown))
    assert any("Mask and more noise" in m for m in values(at.markdown))
    # Per-sample pairs: development samples for everyone, every part for the challenge's organisers.
    differences, scatter = _charts(at)
    assert differences["layout"]["title"]["text"] == "A − B per metric, 95 % CI"
    codes = np.asarray(_stored(db, made["pat"].id)["split_codes"])
    organiser = role in ("olivia", "root")
    parts = [t["name"] for t in scatter["data"]]
    assert parts == (["development samples", "public samples", "private samples"] if organiser
                     else ["development samples"])  # fmt: skip
    shown = sum(len(_decode(t["x"])) for t in scatter["data"])
    assert shown == (len(codes) if organiser else int((codes == 0).sum()))
    heading = "Per-sample scores (development, public, private samples)" if organiser else (
        "Per-sample scores (development samples)")  # fmt: skip
    assert heading in values(at.subheader)
    # Every figure in the charts is rounded like the table (chart JSON leaves the server).
    for chart in (differences, scatter):
        assert all(v == round(v, 4) for v in _figures(chart["data"]))


def test_deep_links_choose_the_methods_and_a_baseline_can_be_compared(app, db, board_world, people):  # noqa: F811
    made = board_world["made"]
    random_id = next(c.submission_id for c in statistics.comparison_candidates(db, CID).options
                     if c.label == f"Baseline · {BASELINES['random']}")  # fmt: skip
    at = _open(app, db, None, PAGE, challenge=CID, a=str(made["sam"].id), b=str(random_id))
    assert at.selectbox(key="compare_a").value == made["sam"].id
    assert at.selectbox(key="compare_b").value == random_id
    assert any(c == "Baseline computed by the server" for c in values(at.caption))
    emd = at.dataframe[0].value.iloc[0]
    assert emd["difference"] > 0  # the noisy method still beats random attributions

    # Choosing the same method twice asks for two different ones.
    at.selectbox(key="compare_b").set_value(made["sam"].id)
    run(at)
    assert values(at.warning) == ["Choose two different methods to compare."]
    assert not at.dataframe


def test_a_hidden_submission_cannot_be_deep_linked(app, db, board_world, people):  # noqa: F811
    made = board_world["made"]
    moderate(db, people["olivia"].id, made["rae"].score_id, action="hidden", reason="Copied")
    at = _open(app, db, None, PAGE, challenge=CID, a=str(made["rae"].id))
    assert values(at.error) == ["Only methods on the leaderboard (and the baselines) have a public card."]
    assert made["rae"].id not in at.selectbox(key="compare_a").options
    assert at.selectbox(key="compare_a").value == made["pat"].id  # the default instead
    assert not any(m.strip("*") == "Mostly noise" for m in values(at.markdown))


def test_a_score_only_challenge_has_nothing_to_compare(app, db, stores, people):  # noqa: F811
    create_challenge(db, stores[0], people["olivia"].id, ChallengeForm("Typed", "Scores.", "typed"), {})
    submit_score(db, people["pat"].id, "typed", 0.5)
    at = _open(app, db, None, PAGE, challenge="typed")
    assert values(at.info) == [statistics.SCORE_ONLY_NOTE]
    assert not at.dataframe and not at.get("plotly_chart")


def test_without_challenges_the_page_says_so(app, db, people):  # noqa: F811
    at = _open(app, db, None, PAGE)
    assert values(at.info) == ["There are no challenges yet."]


def test_after_the_end_the_final_samples_are_compared(app, db, board_world, people):  # noqa: F811
    rules = get_rules(db, CID)
    with db.transaction() as conn:
        values_ = {
            k: getattr(rules, k)
            for k in (
                "starts_at",
                "reveal",
                "daily_limit",
                "total_limit",
                "final_count",
                "metric_name",
                "higher_is_better",
                "min_value",
                "max_value",
            )
        }
        competition_sql.save_rules(conn, CID, {**values_, "ends_at": datetime.now(UTC) - timedelta(minutes=1)})
    made = board_world["made"]
    at = _open(app, db, None, PAGE, challenge=CID)
    samples = at.radio(key="compare_board")
    assert samples.value == "private" and samples.options == ["Final (private samples)", "Public samples"]
    assert "Paired differences (final (private samples))" in values(at.subheader)
    expected = statistics.compare(db, None, CID, made["pat"].id, made["quinn"].id, board="private")
    assert list(at.dataframe[0].value["n"]) == list(expected.metrics["n"])
    codes = np.asarray(_stored(db, made["pat"].id)["split_codes"])
    assert expected.metrics["n"].iloc[0] == int((codes == 2).sum())
    samples.set_value("public")
    run(at)
    assert "Paired differences (public samples)" in values(at.subheader)
    assert at.dataframe[0].value["n"].iloc[0] == int((codes == 1).sum())
