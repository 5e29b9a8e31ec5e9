"""User administration (superusers): activate/deactivate accounts and grant organiser or administrator rights."""

import pandas as pd
import streamlit as st

from exact.accounts import list_users, set_user_flags
from ui.auth import require_login
from ui.feedback import user_errors
from ui.runtime import get_db

admin = require_login("administer users")
if not admin.is_admin:
    st.error("Only administrators may administer users.")
    st.stop()

db = get_db()
st.title("Users")
if flash := st.session_state.pop("users_flash", None):
    st.success(flash)
users = list_users(db, admin.id)
st.dataframe(
    pd.DataFrame(
        [
            {
                "username": u.username,
                "name": f"{u.first_name} {u.last_name}".strip(),
                "email": u.email,
                "active": u.is_active,
                "staff (organiser)": u.is_staff,
                "superuser": u.is_superuser,
                "last login": u.last_login,
                "joined": u.date_joined,
            }
            for u in users
        ]
    ),
    hide_index=True,
)

st.subheader("Change a user")
by_id = {u.id: u for u in users}
chosen_id = st.selectbox("User", options=list(by_id), format_func=lambda uid: by_id[uid].username, key="users_pick")
chosen = by_id[chosen_id]
with st.form(f"user_flags_{chosen_id}"):
    is_active = st.checkbox("Active (may log in)", value=chosen.is_active)
    is_staff = st.checkbox("Staff: organiser, may create and edit challenges", value=chosen.is_staff)
    is_superuser = st.checkbox("Superuser: administrator", value=chosen.is_superuser)
    if st.form_submit_button("Save", type="primary"):
        with user_errors("users"):
            updated = set_user_flags(
                db, admin.id, chosen_id, is_active=is_active, is_staff=is_staff, is_superuser=is_superuser
            )
            state = "active" if updated.is_active else "inactive"
            st.session_state.users_flash = f"Saved {updated.username}: {updated.role}, {state}."
            st.rerun()  # redraw the table with the new flags
