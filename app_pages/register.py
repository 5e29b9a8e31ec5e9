"""Register a new participant account; afterwards open the page that was asked for, if any (as login.py)."""

import streamlit as st

from exact.accounts import register
from ui.auth import log_in, login_link, login_target
from ui.feedback import user_errors
from ui.runtime import get_db

target = login_target()
st.title("Register")
if target is not None:
    st.info(f"Once registered you will be taken to **{target.title}**.")
with st.form("register_form"):
    username = st.text_input("Username", max_chars=150, help="Letters, digits and @ . + - _", autocomplete="username")
    email = st.text_input("Email (optional)", max_chars=254, autocomplete="email")
    first_name = st.text_input("First name (optional)", max_chars=150)
    last_name = st.text_input("Last name (optional)", max_chars=150)
    password = st.text_input(
        "Password", type="password", help="At least 8 characters, not too common.", autocomplete="new-password"
    )
    password_again = st.text_input("Password again", type="password", autocomplete="new-password")
    submitted = st.form_submit_button("Create account", type="primary")

if submitted:
    with user_errors("register"):
        db = get_db()
        user = register(
            db,
            username=username,
            password=password,
            password_again=password_again,
            email=email,
            first_name=first_name,
            last_name=last_name,
        )
        log_in(db, user, next_path=target.path if target else None)
        if target is None:
            st.switch_page("app_pages/home.py")
        st.rerun()  # the next run knows the user and opens the target (app.py)

login_link("Already registered? Log in", next_path=target.path if target else None)
