"""Log out: revoke this session on the server and clear the browser's cookie."""

import streamlit as st

from ui.auth import log_out
from ui.runtime import get_db

log_out(get_db())
st.switch_page("app_pages/home.py")
