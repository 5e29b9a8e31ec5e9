"""User administration (superusers): find a user, activate/deactivate accounts, grant organiser or administrator
rights, reset a forgotten password. The listing is searched and paged in the database, so it costs the same at 50
or 50,000 users."""

import math

import pandas as pd
import streamlit as st

from exact.accounts import USERS_PAGE_SIZE, list_users, reset_password, set_user_flags
from ui.auth import require_login
from ui.feedback import user_errors
from ui.runtime import get_db
from ui.widgets import plural

admin = require_login("administer users")
if not admin.is_admin:
    st.error("Only administrators may administer users.")
    st.stop()

db = get_db()
st.title("Users")
if flash := st.session_state.pop("users_flash", None):
    st.success(flash)


def _back_to_first_page() -> None:
    st.session_state.users_page = 1


search = st.text_input(
    "Search users",
    placeholder="part of a username, e-mail or name",
    key="users_search",
    on_change=_back_to_first_page,
)
# The count comes with the page; a page number past the end (fewer matches than before) shows the last page.
requested = max(1, int(st.session_state.get("users_page", 1)))
listing = list_users(db, admin.id, search=search, offset=(requested - 1) * USERS_PAGE_SIZE)
pages = max(1, math.ceil(listing.total / USERS_PAGE_SIZE))
if requested > pages:
    requested = pages
    listing = list_users(db, admin.id, search=search, offset=(pages - 1) * USERS_PAGE_SIZE)
st.session_state.users_page = requested

count_col, page_col = st.columns([3, 1])
found = plural(listing.total, "user")
if search.strip():
    found += " matches your search" if listing.total == 1 else " match your search"
page_col.number_input("Page", min_value=1, max_value=pages, step=1, key="users_page")
if not listing.items:
    count_col.caption(found + ".")
    st.info("No user matches your search." if search.strip() else "There are no users yet.")
    st.stop()
first, last = listing.offset + 1, listing.offset + len(listing.items)
count_col.caption(f"{found}; showing {first:,} to {last:,} (page {requested:,} of {pages:,}).")

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
                "must change password": u.must_change_password,
                "last login": u.last_login,
                "joined": u.date_joined,
            }
            for u in listing.items
        ]
    ),
    hide_index=True,
    placeholder="",  # e.g. "last login" of someone who never logged in: empty, not "None"
)

st.subheader("Change a user")
by_id = {u.id: u for u in listing.items}  # this page's users only: search or page to reach the others
chosen_id = st.selectbox(
    "User (from this page)", options=list(by_id), format_func=lambda uid: by_id[uid].username, key="users_pick"
)
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

reset = False
if chosen_id == admin.id:
    st.caption("To change your own password, use your profile page (with your current password).")
else:
    with st.form(f"user_reset_{chosen_id}"):
        st.markdown("**Reset the password**")
        st.caption(
            f"Gives {chosen.username} a temporary password, shown here once for you to pass on, and logs them out "
            "everywhere. At their next login they must choose a new password before using the site."
        )
        reset = st.form_submit_button("Reset password")
if reset:  # the temporary password lives in this run only: any click or reload hides it
    with user_errors("reset password"):
        temporary = reset_password(db, admin.id, chosen_id)
        st.success(f"The password of **{temporary.username}** was reset. Their temporary password (shown once):")
        st.code(temporary.password, language=None)
