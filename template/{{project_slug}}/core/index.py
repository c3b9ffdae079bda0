"""The API's root: a map of the resources it serves.

Built from the URLconf, so a route added anywhere under the API appears here
without editing this module (and core imports no domain app).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView


def route_names(patterns: Iterable[URLPattern | URLResolver]) -> Iterator[str]:
    """The name of every route in `patterns`, included URLconfs too."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from route_names(pattern.url_patterns)
        elif pattern.name:
            yield pattern.name


class ApiIndexView(APIView):
    """Every route below this one that takes no parameter, by URL name."""

    permission_classes = (AllowAny,)

    @extend_schema(
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT, description="URL name to absolute URL, e.g. auth-login."
            )
        },
        tags=["api"],
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        index = {}
        for name in sorted(set(route_names(get_resolver().url_patterns))):
            try:
                url = reverse(name, request=request)
            except NoReverseMatch:
                continue  # the route needs a parameter, such as an id
            path = urlsplit(url).path
            if path != request.path and path.startswith(request.path):
                index[name] = url
        return Response(index)
