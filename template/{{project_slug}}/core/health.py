"""Liveness and readiness probes, and the metrics that Prometheus scrapes.

/health/live/ does no I/O: it answers as long as the process serves requests.
/health/ready/ checks the database and the shared cache and answers 503, in
the error shape, naming what is down, so a load balancer stops routing here.
/metrics/ is core.metrics' exposition, for Prometheus (METRICS_TOKEN).

These are a few lines on purpose: django-health-check's current releases need
Python 3.14 and Django 6, and its responses are not in this service's error
shape.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from hmac import compare_digest
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import Http404, HttpResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .errors import FieldError, error_response
from .metrics import exposition

logger = logging.getLogger(__name__)


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "ok", timeout=5)
    if cache.get(key) != "ok":
        raise RuntimeError("cache did not return the value it stored")
    cache.delete(key)


CHECKS: dict[str, Callable[[], None]] = {"database": check_database, "cache": check_cache}

StatusSerializer = inline_serializer(
    "HealthStatus",
    fields={
        "status": serializers.CharField(),
        "checks": serializers.DictField(child=serializers.CharField(), required=False),
    },
)


class ProbeView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = ()
    versioning_class = None


class LivenessView(ProbeView):
    @extend_schema(responses={200: StatusSerializer}, tags=["health"])
    def get(self, _request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response({"status": "ok"})


class ReadinessView(ProbeView):
    error_statuses = (503,)  # documented in the schema (core.schema)

    @extend_schema(responses={200: StatusSerializer}, tags=["health"])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        results: dict[str, str] = {}
        for name, check in CHECKS.items():
            try:
                check()
            except Exception:
                logger.exception("Readiness check %r failed", name)
                results[name] = "down"
            else:
                results[name] = "ok"
        down = [name for name, result in results.items() if result != "ok"]
        if not down:
            return Response({"status": "ok", "checks": results})
        return error_response(
            request,
            status=503,
            code="service_unavailable",
            detail=f"Not ready: {', '.join(down)} unavailable.",
            field_errors=[
                FieldError(field=name, code="unavailable", detail=f"{name} is down.")
                for name in down
            ],
        )


class MetricsView(ProbeView):
    """GET /metrics/ with `Authorization: Bearer <METRICS_TOKEN>`.

    Without METRICS_TOKEN it answers only when DEBUG is on (local runs) and is
    a 404 otherwise, as if it did not exist. Like the probes it is not
    throttled: Prometheus scrapes it every few seconds.
    """

    def get_authenticate_header(self, _request: Request) -> str:
        return 'Bearer realm="metrics"'

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        token = settings.METRICS_TOKEN
        if not token:
            if not settings.DEBUG:
                raise Http404
        elif not compare_digest(
            request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()
        ):
            raise exceptions.NotAuthenticated("A valid metrics token is required.")
        return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
