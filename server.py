"""What ``make run`` serves: the Streamlit app (app.py) with Exact's HTTP routes beside it, in one process.

``streamlit run server.py`` finds ``app`` below and serves it (Streamlit's ASGI server); the pages are app.py's,
unchanged. The routes (web/) are the token API under /api/v1, the login-cookie exchange at /auth/session and
the Prometheus metrics at /metrics. docs/architecture.md, "HTTP routes".
"""

from streamlit.starlette import App

from web import middleware, routes

app = App("app.py", routes=routes(), middleware=middleware())
