"""The HTTP face of Exact beside the Streamlit pages: thin handlers over the same services (exact/).

Like app_pages/, nothing here decides a rule: handlers parse the request, call a service and turn its answer
(or its UserError) into a response. What leaves the server is decided where the pages' is (exact.permissions).
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route


def routes() -> list[BaseRoute]:
    from web.api import api
    from web.auth_routes import session_exchange
    from web.metrics import metrics_endpoint

    return [
        Mount("/api/v1", app=api),
        # One Route, not a Mount at /auth: that would swallow Streamlit's own /auth/login (st.login).
        Route("/auth/session", session_exchange, methods=["GET", "POST"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]


def middleware() -> list[Middleware]:
    from web.metrics import RequestMetrics

    return [Middleware(RequestMetrics)]
