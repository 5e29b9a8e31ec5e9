"""Log in with an Exact (Django) account; afterwards open the page that was asked for (app.py's login target)."""

import streamlit as st

from exact.accounts import authenticate
from ui.auth import client_address, log_in, login_target
from ui.feedback import user_errors
from ui.runtime import get_db

target = login_target()  # this address was a page that needs a login, or a login link said where to go next
st.title("Log in")
if st.query_params.get("handover") == "failed":  # /auth/session refused a used or expired login ticket
    st.warning("Your login could not be completed in time. Please log in again.")
if target is not None:
    st.info(f"Please log in to open **{target.title}**; you will be taken there afterwards.")
with st.form("login_form"):
    username = st.text_input("Username", max_chars=150, autocomplete="username")
    password = st.text_input("Password", type="password", autocomplete="current-password")
    submitted = st.form_submit_button("Log in", type="primary")

if submitted:
    with user_errors("login"):
        db = get_db()
        user = authenticate(db, username, password, client=client_address())
        log_in(db, user, next_path=target.path if target else None)
        if target is None:
            st.switch_page("app_pages/home.py")
        st.rerun()  # the next run knows the user and opens the target (app.py), then the browser gets its cookie

st.page_link(
    "app_pages/register.py",
    label="No account yet? Register",
    icon=":material/person_add:",
    query_params={"next": target.path} if target else None,
)
