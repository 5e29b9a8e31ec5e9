"""Register a new participant account."""

import streamlit as st

from exact.accounts import register
from ui.auth import log_in
from ui.feedback import user_errors
from ui.runtime import get_db

st.title("Register")
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
        log_in(db, user)
        st.switch_page("app_pages/home.py")

st.page_link("app_pages/login.py", label="Already registered? Log in", icon=":material/login:")
