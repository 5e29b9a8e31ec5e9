"""Log in with an Exact (Django) account."""

import streamlit as st

from exact.accounts import authenticate
from ui.auth import client_address, log_in
from ui.feedback import user_errors
from ui.runtime import get_db

st.title("Log in")
if st.query_params.get("handover") == "failed":  # /auth/session refused a used or expired login ticket
    st.warning("Your login could not be completed in time. Please log in again.")
with st.form("login_form"):
    username = st.text_input("Username", max_chars=150, autocomplete="username")
    password = st.text_input("Password", type="password", autocomplete="current-password")
    submitted = st.form_submit_button("Log in", type="primary")

if submitted:
    with user_errors("login"):
        db = get_db()
        user = authenticate(db, username, password, client=client_address())
        log_in(db, user)
        st.switch_page("app_pages/home.py")

st.page_link("app_pages/register.py", label="No account yet? Register", icon=":material/person_add:")
