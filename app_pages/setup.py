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
        if with_demo:
            with st.spinner("Loading the demo…"):
                load_demo(db, get_storage(), get_private_storage())
        log_in(db, admin)
        st.query_params.pop("setup_token", None)  # spent: keep it out of the address bar and history
        st.rerun()
