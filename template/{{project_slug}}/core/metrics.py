"""Prometheus metrics: what the service does, at /metrics/.

The instruments, the middleware that feeds them and their exposition; the
view is core.health.MetricsView. prometheus_client itself, rather than
django-prometheus: the labels are ours
(the route template, never the raw path), throttle refusals and queries per
request are counted where they happen, and nothing wraps the database engine.
Under gunicorn every worker is a process of its own, so the counters live in
prometheus_client's multiprocess mode: gunicorn.conf.py sets
PROMETHEUS_MULTIPROC_DIR (emptied when gunicorn starts), each worker writes
its values to files there and a scrape, whichever worker answers it, adds them
all up. Without that variable (runserver, tests) the process's own registry is
served.

| metric | type | labels |
|---|---|---|
| http_requests_total | counter | route, method, status |
| http_request_duration_seconds | histogram | route, method |
| http_request_db_queries | histogram | route |
| http_throttled_requests_total | counter | scope |

`route` is the URL pattern that served the request, such as
/api/<version>/orders/<pk>/, or "unmatched" when none did (a 404 for an
unknown path, a redirect to HTTPS), so a client cannot grow the label set.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from django.db import connections
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

UNMATCHED_ROUTE = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request reaching the service to its response, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DB_QUERIES = Histogram(
    "http_request_db_queries",
    "Database queries made while serving one request, by route template.",
    ["route"],
    buckets=(0, 1, 2, 3, 5, 10, 20, 50, 100),
)
THROTTLED = Counter(
    "http_throttled_requests",
    "Requests refused with 429, by throttle scope.",
    ["scope"],
)

# A regex route's named group, such as (?P<pk>[^/.]+), shown as <pk>.
_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def route_of(request: HttpRequest) -> str:
    """The URL pattern that served `request`, or UNMATCHED_ROUTE."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return UNMATCHED_ROUTE
    return _template(match.route)


# Routes come from the URL configuration, never from the client: a fixed set.
@functools.lru_cache(maxsize=1024)
def _template(route: str) -> str:
    route = _NAMED_GROUP.sub(r"<\1>", route)
    return "/" + route.replace("^", "").replace("$", "").replace(r"\Z", "")


def count_throttled(scope: str | None) -> None:
    THROTTLED.labels(scope=scope or "none").inc()


class MetricsMiddleware:
    """Counts and times every request, and the database queries it made."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        queries = 0

        def count_query(execute: Callable[..., Any], *args: Any) -> Any:
            nonlocal queries
            queries += 1
            return execute(*args)

        started = time.perf_counter()
        with ExitStack() as stack:
            for connection in connections.all():
                stack.enter_context(connection.execute_wrapper(count_query))
            response = self.get_response(request)
        elapsed = time.perf_counter() - started
        route = route_of(request)
        method = request.method if request.method in METHODS else "other"
        REQUESTS.labels(route=route, method=method, status=str(response.status_code)).inc()
        DURATION.labels(route=route, method=method).observe(elapsed)
        DB_QUERIES.labels(route=route).observe(queries)
        return response


def exposition() -> bytes:
    """Every metric in Prometheus' text format: all workers' in multiprocess mode."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return generate_latest(registry)
