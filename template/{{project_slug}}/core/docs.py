"""Who may read the API's schema and docs pages, and the pages' Content-Security-Policy.

Both pages load their scripts and styles from the service itself (the
drf-spectacular-sidecar package), so the policy allows only this origin: an
injected script or a script from elsewhere does not run. Styles may be inline
(both UIs set them at run time), ReDoc renders in a blob: worker, and images
may be data: URLs. Swagger UI is served in its split form, its start-up script
a file of its own, since an inline script would need 'unsafe-inline'.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class DocsArePublic(BasePermission):
    """The schema and the docs pages exist only while DJANGO_API_DOCS_PUBLIC is on."""

    def has_permission(self, _request: Request, _view: Any) -> bool:
        if not settings.API_DOCS_PUBLIC:
            raise NotFound
        return True


def strict_csp(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """`view`, with CONTENT_SECURITY_POLICY on its every response."""

    @wraps(view)
    def with_policy(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

    return with_policy
