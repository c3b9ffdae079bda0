"""Filter backends shared by every list endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework import filters
from rest_framework.request import Request


def with_tie_breaker(ordering: Sequence[str]) -> tuple[str, ...]:
    """End an ordering on the primary key, so that it is total.

    Rows that share every ordering value (a timestamp, a total) come back in
    an arbitrary order that can change between two queries; any pagination
    would then repeat some rows and skip others. The primary key is unique.
    """
    fields = tuple(ordering)
    if not fields or any(field.lstrip("-") in {"pk", "id"} for field in fields):
        return fields
    return (*fields, "-pk" if fields[0].startswith("-") else "pk")


class OrderingFilter(filters.OrderingFilter):
    """DRF's `?ordering=` filter, with the primary key as the last tie-breaker."""

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        ordering = super().get_ordering(request, queryset, view)
        return with_tie_breaker(ordering) if ordering else ordering
