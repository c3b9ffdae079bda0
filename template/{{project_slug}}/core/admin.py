"""Django's admin, with its login throttled like the API's."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from rest_framework.exceptions import APIException, Throttled

from .errors import error_response
from .throttling import LoginRateThrottle


class AdminSite(admin.AdminSite):
    """The admin's login shares the API's password-attempt limits.

    Per client address (LoginRateThrottle, the allowance of the API's login and
    registration) and per account (FailedLoginThrottle, through the
    authentication backend), so the admin is no side door for password guessing.
    """

    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method != "POST":
            return super().login(request, extra_context)
        throttle = LoginRateThrottle()
        try:
            if not throttle.allow_request(request, None):
                raise Throttled(throttle.wait())
            return super().login(request, extra_context)
        except Throttled as exc:  # from here, or the backend's per-account limit
            response = error_response(request, status=429, code="throttled", detail=str(exc.detail))
            response["Retry-After"] = str(getattr(exc, "wait", 1))
            return response
        except APIException as exc:  # the backend refused the account, for example
            return error_response(
                request,
                status=exc.status_code,
                code=str(exc.get_codes()),
                detail=str(exc.detail),
            )
