"""Create or edit a challenge (organisers): title, id, Markdown description and the three files."""

import streamlit as st

from exact.challenges import (
    CHALLENGE_ID_MAX_LENGTH,
    DESCRIPTION_MAX_LENGTH,
    FILE_KINDS,
    TITLE_MAX_LENGTH,
    ChallengeForm,
    can_edit,
    create_challenge,
    delete_challenge,
    get_challenge,
    list_challenges,
    update_challenge,
)
from exact.competition import get_rules, publish_private_board, update_rules
from exact.errors import NotFound
from exact.evaluation_sets import get_evaluation
from exact.scoring import score_waiting_baselines
from exact.storage import UploadedFile
from exact.trained_models import models_available
from ui.auth import require_login
from ui.competition import moderation_section, rules_inputs, status_line
from ui.evaluation_form import evaluation_section
from ui.feedback import user_errors
from ui.models import model_upload_section
from ui.runtime import get_db, get_private_storage, get_settings, get_storage
from ui.widgets import CURRENT_CHALLENGE, plural, remember_challenge, unknown_challenge

user = require_login("create or edit challenges")
if not user.is_organiser:
    st.error("Only organisers may create or edit challenges.")
    st.stop()

db = get_db()
storage = get_storage()
limit_mb = get_settings().max_upload_mb
st.title("Create / edit challenge")

NEW = ""
if "manage_next_pick" in st.session_state:  # set after a create: continue on the new challenge's edit form
    st.session_state.manage_pick = st.session_state.pop("manage_next_pick")
# A page of challenges matching the search, plus the one picked or deep-linked (however old it is).
manage_search = st.text_input("Find a challenge to edit", key="manage_search", placeholder="title, id or description")
found = list_challenges(db, search=manage_search, sort="title")
existing = {c.challenge_id: c.title for c in found.items}
if found.total > len(found.items):
    st.caption(f"{found.total:,} match; the first {len(found.items)} are listed: refine the search to find others.")
for extra in (st.session_state.get("manage_pick"), st.query_params.get("challenge")):
    if extra and extra not in existing:
        try:
            existing = {extra: get_challenge(db, extra).title, **existing}
        except NotFound:
            if extra == st.query_params.get("challenge"):
                unknown_challenge(extra)
options = [NEW, *existing]
if st.session_state.get("manage_pick") not in options:
    wanted = st.query_params.get("challenge", NEW)
    st.session_state.manage_pick = wanted if wanted in options else NEW
mode = st.selectbox(
    "Challenge",
    options=options,
    format_func=lambda cid: "New challenge" if cid == NEW else f"{existing[cid]} ({cid})",
    key="manage_pick",
)
if flash := st.session_state.pop("manage_flash", None):
    st.success(flash)
    if mode != NEW:
        st.page_link("app_pages/challenge.py", label="Open the challenge page →", query_params={"challenge": mode})
current = get_challenge(db, mode) if mode != NEW else None
if current is not None:
    remember_challenge(current.challenge_id)  # in the address too: a refresh or a shared link edits the same one
    st.page_link(
        "app_pages/dashboard.py",
        label="Open this challenge's dashboard",
        icon=":material/monitoring:",
        query_params={"challenge": current.challenge_id},
    )


def _uploads(prefix: str) -> dict[str, UploadedFile | None]:
    files = {}
    for kind in FILE_KINDS:
        upload = st.session_state.get(f"{prefix}_{kind}")
        files[kind] = UploadedFile(name=upload.name, data=upload.getvalue()) if upload is not None else None
    return files


build_evaluation = None
evaluation = None
if current is None:
    build_evaluation = evaluation_section(get_private_storage(), max_bytes=storage.max_bytes)
else:
    if not can_edit(db, user.id, current.challenge_id):
        st.error("Only the organiser who created this challenge (or an administrator) may change it.")
        st.stop()
    evaluation = get_evaluation(db, current.challenge_id)
    if evaluation is not None:
        st.info(
            f"Scored on the server from uploaded attributions ({evaluation.n_samples} samples of "
            f"{evaluation.height}×{evaluation.width}). The evaluation set cannot be changed after creation."
        )

form_key = f"manage_{mode or 'new'}"
with st.form(form_key, clear_on_submit=False):
    title = st.text_input("Title", value=current.title if current else "", max_chars=TITLE_MAX_LENGTH)
    if current is None:
        challenge_id = st.text_input(
            "Challenge id",
            max_chars=CHALLENGE_ID_MAX_LENGTH,
            help="Used in links and by submissions. Letters, digits, '-' and '_'. Leave blank to generate one "
            "from the title. It cannot be changed later.",
        )
    else:
        challenge_id = current.challenge_id
        st.text_input(
            "Challenge id", value=current.challenge_id, disabled=True, help="Fixed once created: scores refer to it."
        )
    description = st.text_area(
        "Description (Markdown)",
        value=current.description if current else "",
        height=220,
        max_chars=DESCRIPTION_MAX_LENGTH,
    )
    remove: set[str] = set()
    for kind, (label, _, extensions) in FILE_KINDS.items():
        st.file_uploader(
            f"{label} ({', '.join(sorted(extensions))}; up to {limit_mb} MB)",
            type=[ext.lstrip(".").split(".")[-1] for ext in extensions],
            max_upload_size=limit_mb,
            key=f"{form_key}_{kind}",
        )
        if current is not None and current.files.get(kind):
            keep_label = f"Remove the current {label.lower()} ({current.file_name(kind)})"
            if st.checkbox(keep_label, key=f"{form_key}_remove_{kind}"):
                remove.add(kind)
    scored_on_server = (
        evaluation is not None if current is not None else st.session_state.get("manage_eval_mode") != "none"
    )
    build_rules = rules_inputs(
        get_rules(db, current.challenge_id) if current else None,
        key=f"{form_key}_rules",
        scored_on_server=scored_on_server,
    )
    submitted = st.form_submit_button("Create challenge" if current is None else "Save changes", type="primary")

if submitted:
    with user_errors("manage challenge"):
        form = ChallengeForm(title=title, description=description, challenge_id=challenge_id if current is None else "")
        if current is None:
            choice = build_evaluation() if build_evaluation else None
            with st.spinner("Creating the challenge…"):
                saved = create_challenge(
                    db, storage, user.id, form, _uploads(form_key), evaluation=choice, rules=build_rules()
                )
            if choice is not None and get_evaluation(db, saved.challenge_id).scored_inline:
                bar = st.progress(0.0, text="Scoring the baselines…")
                score_waiting_baselines(
                    db,
                    storage,
                    get_private_storage(),
                    saved.challenge_id,
                    progress=lambda done, total: bar.progress(done / total, text=f"Baseline {done} of {total}"),
                )
            # Show the new challenge's edit form, so pressing the button again cannot create a second one.
            st.session_state.manage_flash = f"Created challenge **{saved.title}** (`{saved.challenge_id}`)."
            st.session_state.manage_next_pick = saved.challenge_id
            st.query_params["challenge"] = saved.challenge_id
            st.rerun()
        else:
            rules = build_rules()  # parsed first: a bad date changes nothing
            saved = update_challenge(
                db, storage, user.id, current.challenge_id, form, _uploads(form_key), remove=frozenset(remove)
            )
            update_rules(db, user.id, current.challenge_id, rules)
            st.success(f"Saved **{saved.title}**.")
        st.page_link(
            "app_pages/challenge.py", label="Open the challenge page →", query_params={"challenge": saved.challenge_id}
        )

with st.expander("Preview the description"):
    st.markdown(description or "_Nothing to preview yet._")

if current is not None:
    rules = get_rules(db, current.challenge_id)
    st.caption(status_line(rules))
    publishable = rules.phase() == "closed" and not rules.private_revealed()
    if publishable and st.button("Publish the final leaderboard", key=f"publish_{mode}", type="primary"):
        with user_errors("publish"):
            publish_private_board(db, user.id, current.challenge_id)
            st.success("The final (private) leaderboard is now public.")
    moderation_section(db, user, current.challenge_id)
    if evaluation is not None and models_available():
        model_upload_section(db, storage, get_private_storage(), user.id, current.challenge_id)
    with st.expander("Delete this challenge"):
        st.warning(
            "Deleting removes the challenge, all its scores and submissions, and its files. This cannot be undone."
        )
        confirmation = st.text_input(f"Type `{current.challenge_id}` to confirm", key=f"delete_confirm_{mode}")
        if st.button("Delete challenge", key=f"delete_{mode}", type="primary"):
            with user_errors("delete challenge"):
                counts = delete_challenge(
                    db, storage, get_private_storage(), user.id, current.challenge_id, confirmation=confirmation
                )
                st.session_state.manage_flash = (
                    f"Deleted `{current.challenge_id}` with {plural(counts['api_score'], 'score')} and "
                    f"{plural(counts['exact_submission'], 'submission')}."
                )
                st.session_state.pop(CURRENT_CHALLENGE, None)
                st.session_state.manage_next_pick = NEW
                st.query_params.pop("challenge", None)
                st.rerun()
