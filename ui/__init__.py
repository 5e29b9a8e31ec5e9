"""Streamlit glue shared by app.py and the pages: resources, the logged-in user, error display."""
