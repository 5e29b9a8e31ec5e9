"""First run: create the first administrator (and optionally load the demo). Gone once a superuser exists."""

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
with st.form("setup_form"):
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
        admin = create_first_admin(db, username=username, password=password, password_again=password_again, email=email)
        if with_demo:
            with st.spinner("Loading the demo…"):
                load_demo(db, get_storage(), get_private_storage())
        log_in(db, admin)
        st.rerun()
