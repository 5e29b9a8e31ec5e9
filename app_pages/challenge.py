"""One challenge (deep link ``?challenge=<challenge_id>``): description, files, leaderboard, how to submit."""

from urllib.parse import urlencode

import streamlit as st

from exact.challenges import FILE_KINDS, can_edit, file_for_download
from exact.competition import allowance, get_rules
from exact.evaluation_sets import get_evaluation
from exact.metrics import METRICS
from exact.results import ground_truth_statistics
from exact.scores import leaderboard
from exact.trained_models import list_models
from exact.xaitris import describe_protocol
from ui import snippets
from ui.auth import current_user, login_link
from ui.board import leaderboard_table
from ui.competition import allowance_line, status_line
from ui.models import models_section
from ui.runtime import get_db, get_private_storage, get_storage
from ui.widgets import challenge_picker, format_score

db = get_db()
challenge = challenge_picker(db, key="challenge_page_pick")
if challenge is None:
    st.stop()

st.set_page_config(page_title=f"{challenge.title} · Exact")  # the browser tab names the challenge
st.title(challenge.title)
st.caption(f"Id `{challenge.challenge_id}` · created {challenge.created_at:%Y-%m-%d}")
rules = get_rules(db, challenge.challenge_id)
st.info(status_line(rules))
viewer = current_user()
if viewer is not None and (left := allowance(db, viewer.id, challenge.challenge_id)) is not None:
    st.caption(allowance_line(left))
stats = st.columns(3)
stats[0].metric("Participants", challenge.participants)
stats[1].metric("Submissions", challenge.submissions)
stats[2].metric("Best score", format_score(challenge.best_score))

# Streamlit's Markdown never renders raw HTML unless asked to, so descriptions cannot inject scripts.
st.markdown(challenge.description)

st.subheader("Files")
storage = get_storage()
models = list_models(db, viewer.id if viewer else None, challenge.challenge_id)
file_columns = st.columns(len(FILE_KINDS))
for column, (kind, (label, _, _)) in zip(file_columns, FILE_KINDS.items(), strict=True):
    path = file_for_download(storage, challenge, kind)
    with column:
        if path is None:
            shipped = kind == "model" and models  # the models of a generated benchmark are listed under Models
            st.button(f"{label}: see Models below" if shipped else f"{label}: not provided", disabled=True,
                      key=f"download_{kind}_none")  # fmt: skip
        else:
            st.download_button(
                f"Download {label[0].lower() + label[1:] if label[1:2].islower() else label}",
                data=path.read_bytes,  # read only when clicked
                file_name=path.name,
                key=f"download_{kind}",
                icon=":material/download:",
                on_click="ignore",
            )
            st.caption(f"{path.name} · {path.stat().st_size / 1024:,.1f} KB")

evaluation = get_evaluation(db, challenge.challenge_id)
if evaluation is not None:
    st.subheader("Scored on the server")
    st.markdown(
        f"Submissions are attribution maps for the **{evaluation.n_samples} evaluation inputs** "
        f"({evaluation.height}×{evaluation.width}); the server scores them against ground-truth explanations "
        f"that never leave it. Ranked by **{METRICS[evaluation.primary_metric].label}**"
        + (
            f", also showing {', '.join(METRICS[m].label for m in evaluation.shown_metrics)}."
            if evaluation.shown_metrics
            else "."
        )
    )
    inputs_path = storage.resolve(evaluation.inputs_path)
    if inputs_path.is_file():
        st.download_button(
            "Download evaluation inputs",
            data=inputs_path.read_bytes,
            file_name=inputs_path.name,
            key="download_evaluation_inputs",
            icon=":material/download:",
            on_click="ignore",
        )
    sizes = evaluation.split_sizes
    if "private" in sizes:
        st.markdown(
            f"The samples are split at random: **{sizes['development']} development** samples (their masks are in "
            f"the evaluation inputs file), **{sizes['public']} public** samples that rank the leaderboard while "
            f"the challenge runs, and **{sizes['private']} private** samples that decide the final ranking. "
            f"Only aggregates are shown, rounded to 4 decimals."
            + ("" if evaluation.labels_published else " The labels of the evaluation inputs are not published.")
        )
    if evaluation.benchmark:
        spec = evaluation.benchmark
        st.caption(
            f"Generated XAI-TRIS benchmark: {spec['scenario']} scenario, {spec['size']}×{spec['size']}, "
            f"{spec['background']} background, α = {spec['alpha']}."
        )
    # Scores under different protocols are not comparable: every challenge says which one ranks it.
    st.markdown(f"**Protocol:** {describe_protocol(evaluation.benchmark)}")
    if viewer is not None and viewer.is_organiser and can_edit(db, viewer.id, challenge.challenge_id):
        with st.expander("Ground-truth statistics (organisers only)"):
            st.json(ground_truth_statistics(db, get_private_storage(), viewer.id, challenge.challenge_id))

models_section(db, storage, models)

st.subheader("Leaderboard")
board = leaderboard(db, challenge.challenge_id, limit=10, charts=False)  # the top ten only
if board.is_empty:
    st.caption("No submissions yet: be the first.")
else:
    leaderboard_table(board)
st.page_link(
    "app_pages/leaderboard.py",
    label="Full leaderboard and charts →",
    query_params={"challenge": challenge.challenge_id},
)

st.subheader("How to submit")
user = current_user()
on_site, from_code = st.tabs(["On the website", "From code"])
with on_site:
    if evaluation is None:
        better = "higher" if rules.higher_is_better else "lower"
        valid = ""
        if rules.min_value is not None or rules.max_value is not None:
            low = "-∞" if rules.min_value is None else f"{rules.min_value:g}"
            high = "∞" if rules.max_value is None else f"{rules.max_value:g}"
            valid = f" Valid scores lie between {low} and {high}."
        st.markdown(
            "1. Download the dataset, the model and the XAI-method template above.\n"
            "2. Implement your explanation method from the template and evaluate it on the dataset.\n"
            f"3. Submit the resulting **{rules.metric_name}** ({better} is better) while logged in; your best score "
            f"counts for the ranking.{valid}"
        )
    else:
        st.markdown(
            "1. Download the dataset (with training masks to develop your method) and the evaluation inputs.\n"
            "2. Run your XAI method on every evaluation input and save the attribution maps with NumPy.\n"
            "3. Check them offline with `python -m exact evaluate --masks … --attributions …` on your own data, then "
            "upload them while logged in: the server scores them and your best score is ranked."
        )
    if user is None:  # and then straight on to the submit form for this challenge
        login_link("Log in to submit", next_path=f"/submit?{urlencode({'challenge': challenge.challenge_id})}")
    else:
        st.page_link(
            "app_pages/submit.py",
            label="Submit a score",
            icon=":material/upload:",
            query_params={"challenge": challenge.challenge_id},
        )
        if user.is_organiser and can_edit(db, user.id, challenge.challenge_id):
            st.page_link(
                "app_pages/manage_challenge.py",
                label="Edit this challenge",
                icon=":material/edit:",
                query_params={"challenge": challenge.challenge_id},
            )
with from_code:
    # From a script or notebook: a personal access token and the HTTP API (docs/api.md); the text is ui/snippets.py.
    base = snippets.browser_base_url()
    scored = evaluation is not None
    what = "an attribution file (scored on the server)" if scored else f"a **{rules.metric_name}** score"
    st.markdown(
        f"Submit {what} from a script or notebook with a personal access token (scope **submit**). "
        f"Save the token in `{snippets.TOKEN_FILE}` or put it in `EXACT_TOKEN`, and tell the client where "
        "this server is:"
    )
    if user is None:
        st.caption("Tokens are created on your profile page once you are logged in.")
    else:
        st.page_link("app_pages/profile.py", label="Create a token on your profile page", icon=":material/key:")
    st.code(snippets.environment(base), language="bash")
    st.markdown("With Exact's command-line client:")
    st.code(snippets.cli_command(challenge.challenge_id, server_scored=scored), language="bash", wrap_lines=True)
    st.markdown("Or with curl:")
    st.code(
        snippets.curl_command(challenge.challenge_id, server_scored=scored, base=base),
        language="bash",
        wrap_lines=True,
    )
    docs = snippets.docs_url(base)
    st.markdown(f"Every endpoint, with the shapes of its answers: [{docs}]({docs})")
