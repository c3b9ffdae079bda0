"""The one request-body parser: JSON, refusing what Python's json module cannot take."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with deep nesting a 400 instead of a 500.

    Python's json module recurses once per level of nesting, so a body such as
    `[[[[...]]]]` a hundred thousand levels deep raises RecursionError, which
    DRF's parser does not catch. It is malformed input like any other.
    """

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the body is nested too deeply.") from exc
