"""First run: create the first administrator (and optionally load the demo). Gone once a superuser exists.

Claiming the administrator needs the one-time set-up token that the server printed on its console and in its
log, so the first visitor of a freshly started server cannot simply take it.
"""

import streamlit as st

from exact.accounts import create_first_admin
from exact.demo import load_demo
from ui.auth import log_in
from ui.feedback import user_errors
from ui.runtime import get_db, get_private_storage, get_storage

st.title("Welcome to Exact")
setup_area = st.empty()  # cleared once the administrator exists
with setup_area.container():
    st.markdown(
        "This database has no administrator yet. Create the first one: it can create challenges and manage users. "
        "This page disappears for good once an administrator exists."
    )
    token_from_link = st.query_params.get("setup_token", "")
    if not token_from_link:
        st.info(
            "**You need the set-up token.** When this page was first opened, the server printed a line "
            "`Exact set-up token: … (open http://…/?setup_token=…)` on its console and in its log (where `make run` "
            "was started). Open that link, or paste the token below.\n\n"
            "Or create the administrator on the server instead: "
            "`python -m exact create-user --superuser USERNAME` (then reload this page)."
        )
    with st.form("setup_form"):
        token = st.text_input(
            "Set-up token",
            value=token_from_link,
            type="password",
            help="Printed on the server's console and in its log: a line starting 'Exact set-up token:'.",
        )
        username = st.text_input("Administrator username", max_chars=150, autocomplete="username")
        email = st.text_input("Email (optional)", max_chars=254)
        password = st.text_input(
            "Password", type="password", autocomplete="new-password", help="At least 8 characters, not too common."
        )
        password_again = st.text_input("Password again", type="password", autocomplete="new-password")
        with_demo = st.checkbox("Also load the demo: a few challenges with files, users and scores", value=False)
        submitted = st.form_submit_button("Create administrator", type="primary")

if submitted:
    with user_errors("setup"):
        db = get_db()
        admin = create_first_admin(
            db, username=username, password=password, password_again=password_again, email=email, setup_token=token
        )
        report = None
        if with_demo:
            with st.spinner("Loading the demo…"):
                report = load_demo(db, get_storage(), get_private_storage(), train_now=False)
        log_in(db, admin)  # the browser gets its cookie on the next run, once this page has been read
        st.query_params.pop("setup_token", None)  # spent: keep it out of the address bar and history
        if report is None or report.password is None:
            st.rerun()
        setup_area.empty()
        # Shown this once: it lives in this run only (not in session state), and the next click leaves the page.
        st.success(f"Created the administrator **{admin.username}** and loaded the demo.")
        st.markdown(
            f"The demo accounts ({', '.join(f'`{name}`' for name in report.users_created)}) all have this password. "
            "**Note it now: it is not shown again** (an administrator can reset it on the Users page)."
        )
        st.code(report.password, language=None)
        st.button("Continue to Exact", type="primary", key="setup_continue")
