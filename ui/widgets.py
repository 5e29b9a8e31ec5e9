"""Small building blocks several pages share."""

from __future__ import annotations

import streamlit as st

from db.database import Database
from exact.challenges import Challenge, can_edit, get_challenge, list_challenges
from exact.errors import NotFound

PICKER_PAGE_SIZE = 50
CURRENT_CHALLENGE = "current_challenge"  # the challenge this tab was last on, for pages opened without ?challenge=


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """'1 participant', '3 participants', '1,204 submissions'."""
    return f"{count:,} {singular if count == 1 else (plural_form or singular + 's')}"


def unknown_challenge(challenge_id: str) -> None:
    """An id from the address that names no challenge: say so (never show another one) and link to the list."""
    st.error(f"There is no challenge {challenge_id!r}. It may have been deleted, or the link is mistyped.")
    st.page_link("app_pages/challenges.py", label="See all challenges", icon=":material/list:")


def remember_challenge(challenge_id: str, *, in_address: bool = True) -> None:
    """Keep ``challenge_id`` as this tab's current challenge and (``in_address``) in ``?challenge=``, so links,
    Back and a refresh keep it. Pages that show one challenge without the picker call this too."""
    st.session_state[CURRENT_CHALLENGE] = challenge_id
    if in_address and st.query_params.get("challenge") != challenge_id:
        st.query_params["challenge"] = challenge_id


def challenge_picker(
    db: Database, *, key: str, label: str = "Challenge", organised_by: int | None = None
) -> Challenge | None:
    """Search and page through the challenges, preselecting the one in ``?challenge=`` (any challenge, however
    old), else the challenge this tab was last on (the sidebar's links carry no query string), else the newest.

    The choice is written into the address, so Back/Forward, a refresh and a shared link show the same
    challenge. An unknown id is reported with a link to the list, never replaced by another challenge.
    ``organised_by`` (the logged-in user's id) offers only the challenges that user organises; a ``?challenge=``
    naming another one is still preselected, for the page's service to refuse with its reason."""
    wanted = st.query_params.get("challenge")
    written_key = f"{key}_in_address"  # what this picker last wrote into the address
    linked = None
    if wanted:
        try:
            linked = get_challenge(db, wanted)
        except NotFound:
            if st.session_state.get(key) is None:  # not once the visitor has chosen another one below
                unknown_challenge(wanted)
    elif remembered := st.session_state.get(CURRENT_CHALLENGE):
        try:
            linked = get_challenge(db, remembered)
        except NotFound:  # deleted meanwhile: forget it, fall back to the newest
            st.session_state.pop(CURRENT_CHALLENGE, None)
        if linked is not None and organised_by is not None and not can_edit(db, organised_by, remembered):
            linked = None  # the challenge browsed last is someone else's: start with one of this user's
    search_key, page_key = f"{key}_search", f"{key}_page"
    search = st.session_state.get(search_key, "")
    page_no = int(st.session_state.get(page_key, 1))
    offset = (page_no - 1) * PICKER_PAGE_SIZE
    found = list_challenges(db, search=search, limit=PICKER_PAGE_SIZE, offset=offset, organised_by=organised_by)
    pages = max(1, -(-found.total // PICKER_PAGE_SIZE))
    if page_no > pages:  # the search narrowed: back to its first page
        st.session_state[page_key] = 1
        found = list_challenges(db, search=search, limit=PICKER_PAGE_SIZE, organised_by=organised_by)
    if found.total == 0 and not search and linked is None:
        if not wanted:
            st.info("You organise no challenge yet." if organised_by is not None else "There are no challenges yet.")
        return None
    search_col, page_col = st.columns([3, 1])
    search_col.text_input("Find a challenge", key=search_key, placeholder="title, id or description")
    if pages > 1:
        page_col.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1, key=page_key)
    by_id = {c.challenge_id: c for c in found.items}
    if linked is not None and linked.challenge_id not in by_id:
        by_id = {linked.challenge_id: linked, **by_id}
    if not by_id:
        st.info("No challenge matches your search.")
        return None
    options: dict = {}
    # The address changed from outside this picker (a link, Back/Forward): it wins over the widget's old value.
    # (Widget state is also dropped whenever a page is left, so arriving from a link honours ?challenge= anyway.)
    if linked is not None and wanted and wanted != st.session_state.get(written_key):
        st.session_state[key] = linked.challenge_id
    if st.session_state.get(key) not in by_id:
        default = linked.challenge_id if linked is not None else (None if wanted else next(iter(by_id)))
        if default is None:
            st.session_state.pop(key, None)
            options = {"index": None, "placeholder": "Choose a challenge"}
        else:
            st.session_state[key] = default
    if pages > 1:
        st.caption(f"{plural(found.total, 'challenge')}{' found' if search else ''}; {len(found.items)} on this page.")
    chosen = st.selectbox(
        label, options=list(by_id), format_func=lambda cid: f"{by_id[cid].title} ({cid})", key=key, **options
    )
    if chosen is None:
        return None
    st.session_state[written_key] = chosen
    remember_challenge(chosen)
    return by_id[chosen]


def format_score(value: float | None) -> str:
    return "–" if value is None else f"{value:.6g}"
