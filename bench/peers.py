"""The peers of the rendered orders list, served by the same processes over the same data.

`make bench` copies this file into the benchmarked project as bench_peers.py
(bench/reference.py mounts its URLs); the template never ships it.

- plain_drf_orders: the list as a plain DRF project writes it: a
  `ModelSerializer` with the customer's email through `source=`, the queryset
  with `select_related`, DRF's own `JSONRenderer` and `CursorPagination`
  (unsigned cursors), SimpleJWT's stock `JWTAuthentication`. No throttling,
  no versioning, no filter or ordering backends, no fast path.
- ninja_api: django-ninja with the same fields: a `Schema` reading the
  customer's email through a dotted alias, its own `CursorPagination` on
  `/bench/ninja/orders/` and its default `LimitOffsetPagination` (which runs a
  `COUNT(*)` on every request) on `/bench/ninja/orders-offset/`. Its
  authentication is an `HttpBearer` that verifies the token with SimpleJWT
  (the same signing key and checks) and loads the user as SimpleJWT does
  (one query; an inactive user is refused). No throttling, no filters.

Each has a nested twin (orders with their lines: the order detail's fields,
`items` with each line's product name and SKU), compared with the order
detail's serializer served as a list by the service's own viewset
(RenderedNestedList below): plain DRF with the lines prefetched in one more
query (`prefetch_related` with the product joined), django-ninja the same with
`list[NinjaItem]`.

All of them answer the rows the rendered list answers: staff see every order,
anybody else their own, newest first (`-created_at`, `-id`), `?page_size=`
from 1 to 100 (25 by default). The token's login (family) is not checked by
the peers; the rendered list checks it in the same query as the user.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from importlib import import_module
from typing import Any

from django.apps import apps
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.urls import path
from ninja import Field, NinjaAPI, Schema
from ninja.pagination import CursorPagination as NinjaCursorPagination
from ninja.pagination import LimitOffsetPagination, paginate
from ninja.security import HttpBearer
from rest_framework import generics, pagination, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken

Order = apps.get_model("orders", "Order")
OrderItem = apps.get_model("orders", "OrderItem")
ORDERING = ("-created_at", "-id")


def visible_orders(user: Any) -> QuerySet[Any]:
    orders = Order.objects.select_related("customer__user")
    return orders if user.is_staff else orders.filter(customer__user=user)


def with_items(orders: QuerySet[Any]) -> QuerySet[Any]:
    """Each order's lines with their product, in one more query for the page."""
    items = OrderItem.objects.select_related("product").order_by("id")
    return orders.prefetch_related(Prefetch("items", queryset=items))


# ------------------------------------------------------------------ the rendered nested list
# The service has no list of orders with their lines; this is the one a team
# would add: the order detail's serializer as a list (FastListSerializer, so
# its nested lines take the fast path) over the detail's selector, served by
# the service's own viewset (authentication, throttles, signed cursor, ...).
_orders = apps.get_app_config("orders").name
_views = import_module(f"{_orders}.views")
_serializers = import_module(f"{_orders}.serializers")
_selectors = import_module(f"{_orders}.selectors")
_lists = import_module(f"{_orders}.lists")


class NestedOrderSerializer(_serializers.OrderDetailSerializer):  # type: ignore[misc,name-defined]
    class Meta(_serializers.OrderDetailSerializer.Meta):  # type: ignore[misc,name-defined]
        list_serializer_class = _lists.FastListSerializer


class RenderedNestedList(_views.OrderViewSet):  # type: ignore[misc,name-defined]
    def get_serializer_class(self, action: str | None = None) -> Any:
        if (action or self.action) == "list":
            return NestedOrderSerializer
        return super().get_serializer_class(action)

    def get_queryset(self) -> QuerySet[Any]:
        return _selectors.order_detail(user=self.user)  # type: ignore[no-any-return]


# ------------------------------------------------------------------ plain DRF
class PlainOrderSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    customer_email = serializers.EmailField(source="customer.user.email", read_only=True)

    class Meta:
        model = Order
        fields = ("id", "customer", "customer_email", "status", "total", "created_at")


class PlainItemSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    product_name = serializers.CharField(source="product.name", read_only=True)
    sku = serializers.CharField(source="product.sku", read_only=True)

    class Meta:
        model = OrderItem
        fields = ("id", "product", "product_name", "sku", "quantity", "unit_price")


class PlainNestedOrderSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    customer_email = serializers.EmailField(source="customer.user.email", read_only=True)
    items = PlainItemSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = (
            "id",
            "customer",
            "customer_email",
            "status",
            "shipping_address",
            "total",
            "created_at",
            "items",
        )


class PlainCursorPagination(pagination.CursorPagination):
    ordering = ORDERING
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100


class PlainOrderList(generics.ListAPIView):  # type: ignore[type-arg]
    serializer_class = PlainOrderSerializer
    pagination_class = PlainCursorPagination
    authentication_classes = (JWTAuthentication,)
    permission_classes = (IsAuthenticated,)
    renderer_classes = (JSONRenderer,)
    throttle_classes = ()
    filter_backends = ()
    versioning_class = None

    def get_queryset(self) -> QuerySet[Any]:
        return visible_orders(self.request.user)


class PlainNestedOrderList(PlainOrderList):
    serializer_class = PlainNestedOrderSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return with_items(visible_orders(self.request.user))


# ------------------------------------------------------------------ django-ninja
class SimpleJWTBearer(HttpBearer):
    """The Bearer token verified by SimpleJWT, the user loaded as SimpleJWT loads it."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        authentication = JWTAuthentication()
        try:
            return authentication.get_user(authentication.get_validated_token(token.encode()))
        except (InvalidToken, AuthenticationFailed):
            return None


class NinjaOrder(Schema):
    id: int
    customer: int = Field(alias="customer_id")
    customer_email: str = Field(alias="customer.user.email")
    status: str
    total: Decimal
    created_at: datetime


class NinjaItem(Schema):
    id: int
    product: int = Field(alias="product_id")
    product_name: str = Field(alias="product.name")
    sku: str = Field(alias="product.sku")
    quantity: int
    unit_price: Decimal


class NinjaNestedOrder(NinjaOrder):
    shipping_address: str
    items: list[NinjaItem]


ninja_api = NinjaAPI(urls_namespace="bench_ninja", docs_url=None, auth=SimpleJWTBearer())


@ninja_api.get("/orders/", response=list[NinjaOrder])
@paginate(NinjaCursorPagination, ordering=ORDERING, page_size=25, max_page_size=100)
def ninja_orders(request: HttpRequest) -> QuerySet[Any]:
    return visible_orders(request.auth)  # type: ignore[attr-defined]


@ninja_api.get("/orders-offset/", response=list[NinjaOrder])
@paginate(LimitOffsetPagination, max_limit=100)
def ninja_orders_offset(request: HttpRequest) -> QuerySet[Any]:
    return visible_orders(request.auth).order_by(*ORDERING)  # type: ignore[attr-defined]


@ninja_api.get("/orders-nested/", response=list[NinjaNestedOrder])
@paginate(NinjaCursorPagination, ordering=ORDERING, page_size=25, max_page_size=100)
def ninja_orders_nested(request: HttpRequest) -> QuerySet[Any]:
    return with_items(visible_orders(request.auth))  # type: ignore[attr-defined]


urlpatterns = [
    path("bench/nested/", RenderedNestedList.as_view({"get": "list"})),
    path("bench/plain/", PlainOrderList.as_view()),
    path("bench/plain-nested/", PlainNestedOrderList.as_view()),
    path("bench/ninja/", ninja_api.urls),
]
