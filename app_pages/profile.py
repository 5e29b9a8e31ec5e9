"""Profile: your name and email, your password, and your personal access tokens for the HTTP API."""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from exact.accounts import change_password, update_profile
from exact.api_tokens import EXPIRY_DAYS, SCOPES, create_token, list_tokens, revoke_token
from ui.auth import log_in, require_login, take_notice
from ui.feedback import user_errors
from ui.runtime import get_db
from ui.snippets import TOKEN_FILE, browser_base_url, docs_url

user = require_login("see your profile")
db = get_db()
st.title("Profile")
st.caption(f"Username **{user.username}** · role {user.role} · member since {user.date_joined:%Y-%m-%d}")
if user.must_change_password:  # app.py keeps every other page closed until then
    st.warning(
        "An administrator has reset your password. Choose a new one below (your current password is the temporary "
        "one you were given) to use the rest of the site."
    )

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
            log_in(db, user, notice="password_changed")  # all old sessions (this one too) were revoked: a fresh one
            st.rerun()  # hands the new cookie to the browser, which comes back here
    if take_notice("password_changed"):
        st.success("Your password was changed. Other browsers where you were logged in have been logged out.")

# --- API tokens (docs/api.md): the page collects input and shows what exact.api_tokens returns ---------------------

_REVOKED_FLASH = "api_token_flash"  # a one-run confirmation after a revoke; never the secret
_SCOPE_LABELS = {
    "read": "read: your submissions, your remaining submissions and your results",
    "submit": "submit: scores and attribution uploads",
}


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


st.subheader("API tokens")
st.markdown(
    "Personal access tokens let scripts and notebooks use the HTTP API as you "
    f"([reference]({docs_url(browser_base_url())})). Each token is shown once; the server keeps only its hash."
)
if flash := st.session_state.pop(_REVOKED_FLASH, None):
    st.success(flash)

new_token = None  # lives for this run only: nothing below puts the secret into session state
with st.form("api_token_form", clear_on_submit=True):
    token_name = st.text_input("Token name", max_chars=100, placeholder="e.g. laptop, cluster, notebook")
    token_days = st.selectbox(
        "Expires after",
        EXPIRY_DAYS,
        index=EXPIRY_DAYS.index(90) if 90 in EXPIRY_DAYS else len(EXPIRY_DAYS) - 1,
        format_func=lambda days: f"{days} days",
    )
    token_scopes = [
        scope
        for scope in SCOPES
        if st.checkbox(_SCOPE_LABELS.get(scope, scope), value=True, key=f"api_token_scope_{scope}")
    ]
    if st.form_submit_button("Create token"):
        with user_errors("create an API token"):
            new_token = create_token(db, user.id, name=token_name, scopes=token_scopes, days=token_days)

if new_token is not None:
    st.success(
        f"Created token **{new_token.token.name}** ({', '.join(new_token.token.scopes)}), "
        f"valid until {_utc(new_token.token.expires_at)} UTC."
    )
    st.warning(
        "Copy the token now: it will not be shown again (any click or reload on this page hides it). "
        f"Use it from a shell with `export EXACT_TOKEN=exact_…`, or save it to `{TOKEN_FILE}` (readable only by "
        "you: `chmod 600`); clients send it as `Authorization: Bearer exact_…`."
    )
    st.code(new_token.secret, language=None)

tokens = []
with user_errors("list API tokens"):
    tokens = list_tokens(db, user.id)
if not tokens:
    st.caption("You have no API tokens yet.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "name": t.name,
                    "prefix": f"{t.prefix}…",
                    "scopes": ", ".join(t.scopes),
                    "created": _utc(t.created_at),
                    "expires": _utc(t.expires_at),
                    "last used": "never" if t.last_used_at is None else _utc(t.last_used_at),
                    "status": t.status,
                }
                for t in tokens
            ]
        ),
        hide_index=True,
    )
    st.caption("Times in UTC.")
    for t in tokens:
        if t.status != "active":
            continue
        if st.button(f"Revoke {t.name} ({t.prefix}…)", key=f"api_token_revoke_{t.id}", icon=":material/block:"):
            with user_errors("revoke an API token"):
                revoke_token(db, user.id, t.id)
                st.session_state[_REVOKED_FLASH] = f"Revoked token **{t.name}**: it no longer works."
                st.rerun()  # redraw the table with its new status
