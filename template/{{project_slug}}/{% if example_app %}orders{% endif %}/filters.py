"""Filters of the orders list: `?status=&customer=&created_after=&created_before=&customer_email=`.

A value that does not parse (an unknown status, a date that is not ISO 8601)
is a 400 in the error shape, naming the filter, never a silently unfiltered
list. Ordering (`?ordering=created_at|-created_at|total|-total`) is the
view's, through core.filters.OrderingFilter.
"""

from __future__ import annotations

from django import forms
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from .models import Order


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.NumberFilter):
    """A whole-number id; django-filter's NumberFilter would accept 1.5."""

    field_class = forms.IntegerField


class OrderFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Order.Status.choices)
    customer = IdFilter(field_name="customer_id", help_text="Id of the customer.")
    created_after = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Placed at or after (ISO 8601)."
    )
    created_before = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Placed before (ISO 8601)."
    )
    customer_email = filters.CharFilter(
        field_name="customer__user__email",
        lookup_expr="icontains",
        max_length=254,
        help_text="Part of the customer's email address, any case.",
    )

    class Meta:
        model = Order
        fields = ("status", "customer", "created_after", "created_before", "customer_email")
