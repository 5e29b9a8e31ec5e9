"""Database (administrators): the upstream schema version of the api tables and how the app adapts to it."""

import streamlit as st

from exact.schema_status import schema_status
from ui.auth import require_login
from ui.runtime import get_db

admin = require_login("see the database's schema")
if not admin.is_admin:
    st.error("Only administrators may see the database's schema.")
    st.stop()

status = schema_status(get_db(), admin.id)
st.title("Database")
names = {"spec": "the spec (2025-05)", "2025-07": "upstream of July 2025", "2026-05": "upstream of May 2026"}
st.metric("Schema of the Exact tables", names.get(status.version, "not a known version"))
st.caption(status.ranking_rule)
st.subheader("Columns beyond the spec")
if status.extra_columns:
    st.table({"column": list(status.extra_columns), "what the app writes": list(status.extra_columns.values())})
else:
    st.write("None: the tables are exactly the spec's.")
st.subheader("Not mapped")
if status.unknown_columns:
    st.warning(
        "Columns of no known version; the app leaves them to their defaults and never reads them: "
        + ", ".join(f"`{c}`" for c in status.unknown_columns)
    )
else:
    st.write("Nothing: every column is one the app knows.")
st.subheader("Django migrations of the api app")
st.write(", ".join(f"`{m}`" for m in status.api_migrations) or "None recorded.")
