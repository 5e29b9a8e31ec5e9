"""Presentation view for a projector (docs/workshop.md): ``/present?challenge=ID`` or ``?challenges=a,b``, with
``&anonymous=1``, ``&top=N`` and ``&refresh=S``. Open to everyone, like the leaderboards it shows."""

import streamlit as st

from exact.challenges import get_challenge
from exact.errors import NotFound, ValidationError
from exact.presentation import MAX_CHALLENGES, parse_request
from ui import presentation
from ui.runtime import get_db

presentation.hide_chrome()


def _to_the_list() -> None:
    st.page_link("app_pages/challenges.py", label="Choose a challenge from the list", icon=":material/emoji_events:")


try:
    request = parse_request(st.query_params.to_dict())
except ValidationError as exc:
    st.title("Presentation")
    st.error(str(exc))
    _to_the_list()
    st.stop()

if not request.challenge_ids:
    st.title("Presentation")
    st.info(
        "This view shows a leaderboard on a projector: open it as `present?challenge=ID`, or "
        f"`present?challenges=A,B` for up to {MAX_CHALLENGES} challenges side by side. Add `&anonymous=1` to show "
        "participants as numbers and `&top=N` for the number of rows."
    )
    _to_the_list()
    st.stop()

db = get_db()
challenges, unknown = [], []
for challenge_id in request.challenge_ids:
    try:
        challenges.append(get_challenge(db, challenge_id))
    except NotFound:
        unknown.append(challenge_id)
if not challenges:
    st.title("Presentation")
for challenge_id in unknown:
    st.error(f"There is no challenge {challenge_id!r}.")
if unknown:
    _to_the_list()
if challenges:
    presentation.show(db, challenges, request)
