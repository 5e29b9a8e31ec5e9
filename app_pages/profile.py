"""Profile: your name and email, and your password."""

import streamlit as st

from exact.accounts import change_password, update_profile
from ui.auth import log_in, require_login
from ui.feedback import user_errors
from ui.runtime import get_db

user = require_login("see your profile")
db = get_db()
st.title("Profile")
st.caption(f"Username **{user.username}** · role {user.role} · member since {user.date_joined:%Y-%m-%d}")

with st.form("profile_form"):
    st.subheader("Your details")
    first_name = st.text_input("First name", value=user.first_name, max_chars=150)
    last_name = st.text_input("Last name", value=user.last_name, max_chars=150)
    email = st.text_input("Email", value=user.email, max_chars=254)
    if st.form_submit_button("Save details", type="primary"):
        with user_errors("profile"):
            update_profile(db, user.id, first_name=first_name, last_name=last_name, email=email)
            st.success("Your details were saved.")

with st.form("password_form", clear_on_submit=True):
    st.subheader("Change password")
    current = st.text_input("Current password", type="password")
    new = st.text_input("New password", type="password", help="At least 8 characters, not too common.")
    again = st.text_input("New password again", type="password")
    if st.form_submit_button("Change password"):
        with user_errors("change password"):
            change_password(db, user.id, current_password=current, new_password=new, new_password_again=again)
            log_in(db, user)  # every old session (this one included) was revoked; continue on a fresh one
            st.success("Your password was changed. Other browsers where you were logged in have been logged out.")
