"""/metrics in Prometheus text format (prometheus_client): requests and latencies of the HTTP routes, the scoring
queue and the scoring throughput. The queue figures are read from the database at scrape time, so they cover
every scoring process on every machine, not only this server's."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "exact_http_requests", "HTTP requests to Exact's routes", ["method", "route", "status"], registry=REGISTRY
)
LATENCY = Histogram(
    "exact_http_request_duration_seconds",
    "Time to answer an HTTP request to Exact's routes (to the first byte of the body)",
    ["method", "route"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
_MEASURED_PREFIXES = ("/api/", "/auth/session", "/metrics")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _method_label(scope: Scope) -> str:
    # Any token is a valid HTTP method: a client inventing new ones must not invent new time series.
    return scope["method"] if scope["method"] in _METHODS else "OTHER"


def _route_label(scope: Scope) -> str:
    """The route's template (/api/v1/challenges/{challenge_id}), never the raw path: ids must not explode the
    number of time series."""
    route = scope.get("route")
    root = scope.get("root_path", "")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if template:
        return f"{root}{template}" if not template.startswith(root) else template
    return "unmatched"


class RequestMetrics:
    """ASGI middleware counting and timing the requests to Exact's own routes (Streamlit's are not ours)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_MEASURED_PREFIXES):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                LATENCY.labels(_method_label(scope), _route_label(scope)).observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            REQUESTS.labels(_method_label(scope), _route_label(scope), str(status["code"])).inc()


class _QueueCollector(Collector):
    def collect(self):
        from exact.operations import health
        from web.resources import database

        report = health(database())
        up = GaugeMetricFamily("exact_database_up", "1 when the database answered this scrape")
        up.add_metric([], 1.0 if report.database_ok else 0.0)
        yield up
        if report.queue is None:
            return
        queue = report.queue
        depth = GaugeMetricFamily("exact_scoring_queue_depth", "Submissions waiting or being scored", labels=["state"])
        depth.add_metric(["queued"], queue.queued)
        depth.add_metric(["running"], queue.running)
        yield depth
        oldest = GaugeMetricFamily("exact_scoring_queue_oldest_age_seconds", "Age of the oldest waiting submission")
        oldest.add_metric([], queue.oldest_age_s or 0.0)
        yield oldest
        finished = GaugeMetricFamily(
            "exact_scoring_finished_last_hour", "Submissions finished in the last hour", labels=["outcome"]
        )
        finished.add_metric(["done"], queue.done_last_hour)
        finished.add_metric(["failed"], queue.failed_last_hour)
        yield finished


REGISTRY.register(_QueueCollector())


def metrics_endpoint(request: Request) -> Response:
    # A plain function: Starlette runs it in its thread pool, so the database read does not block the event loop.
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
