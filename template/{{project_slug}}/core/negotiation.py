"""Content negotiation, with the common request answered without parsing.

Almost every API request asks for no format (`?format=` or a suffix) and
sends `Accept: */*`, no Accept header at all, or exactly the first
renderer's media type. DRF answers each of those with the first renderer and
its media type, after parsing the header into media types and ordering them
by precedence; this class gives the same answer directly and leaves every
other request to DRF.
"""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework import negotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class ContentNegotiation(negotiation.DefaultContentNegotiation):
    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        format_param = self.settings.URL_FORMAT_OVERRIDE
        asks_format = format_suffix or (format_param and request.query_params.get(format_param))
        if renderers and not asks_format:
            first = renderers[0]
            if request.META.get("HTTP_ACCEPT", "*/*") in ("*/*", first.media_type):
                return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)
