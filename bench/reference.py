"""Reference views over the same orders, copied into the benchmarked project.

- naive_orders: the N+1 loop the seed articles warn about. For each order of
  the page it reads `order.customer` and then the customer's user (two
  queries per row) and counts `order.items` (one more). No serializer.
- ceiling_orders: what the same page costs with no framework at all: one
  `.values()` query joined to the user table, rendered with orjson.

Both return the same fields as the service's v1 list (`id`, `customer`,
`customer_email`, `status`, `total`, `created_at`; the naive view adds
`item_count`, as the seed's view does), newest first, `?page_size=` rows.
They skip authentication, throttling and pagination links, which the
service's list pays for: that is the point of a ceiling.

- ceiling_nested_orders: the orders with their lines (the order detail's
  fields), as cheaply: the page's `.values()`, then one `.values()` query for
  all of the page's lines (product name and SKU joined), grouped in Python.
- ceiling_create: an order placed with the service's locking and checks in
  raw ORM code (its docstring says what it leaves out).

The URLs also mount the peers (plain DRF, django-ninja) of bench/peers.py,
copied next to this file as bench_peers.py.
"""

from __future__ import annotations

from decimal import Decimal

import orjson
from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Case, Count, F, Sum, Value, When
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from bench_peers import urlpatterns as peer_urlpatterns
from config.urls import *  # noqa: F403
from config.urls import urlpatterns as service_urlpatterns

Customer = apps.get_model("orders", "Customer")
Order = apps.get_model("orders", "Order")
OrderItem = apps.get_model("orders", "OrderItem")
Product = apps.get_model("orders", "Product")


def page_size(request: HttpRequest) -> int:
    return max(1, min(100, int(request.GET.get("page_size", 25))))


def naive_orders(request: HttpRequest) -> HttpResponse:
    rows = []
    for order in Order.objects.order_by("-created_at", "-id")[: page_size(request)]:
        rows.append(
            {
                "id": order.id,
                "customer": order.customer.id,
                "customer_email": order.customer.user.email,
                "status": order.status,
                "total": str(order.total),
                "created_at": order.created_at.isoformat().replace("+00:00", "Z"),
                "item_count": order.items.count(),
            }
        )
    return HttpResponse(orjson.dumps({"results": rows}), content_type="application/json")


def ceiling_orders(request: HttpRequest) -> HttpResponse:
    rows = list(
        Order.objects.order_by("-created_at", "-id").values(
            "id",
            "customer",
            "status",
            "total",
            "created_at",
            customer_email=F("customer__user__email"),
        )[: page_size(request)]
    )
    for row in rows:
        row["total"] = str(row["total"])
    return HttpResponse(
        orjson.dumps({"results": rows}, option=orjson.OPT_UTC_Z), content_type="application/json"
    )


def ceiling_nested_orders(request: HttpRequest) -> HttpResponse:
    """The nested list with no framework: the page's `.values()`, then its lines in one query."""
    orders = list(
        Order.objects.order_by("-created_at", "-id").values(
            "id",
            "customer",
            "status",
            "shipping_address",
            "total",
            "created_at",
            customer_email=F("customer__user__email"),
        )[: page_size(request)]
    )
    lines: dict[int, list[dict[str, object]]] = {order["id"]: [] for order in orders}
    for line in (
        OrderItem.objects.filter(order__in=list(lines))
        .order_by("id")
        .values(
            "id",
            "order_id",
            "product",
            "quantity",
            "unit_price",
            product_name=F("product__name"),
            sku=F("product__sku"),
        )
    ):
        lines[line.pop("order_id")].append(line)
        line["unit_price"] = str(line["unit_price"])
    for order in orders:
        order["total"] = str(order["total"])
        order["items"] = lines[order["id"]]
    return HttpResponse(
        orjson.dumps({"results": orders}, option=orjson.OPT_UTC_Z),
        content_type="application/json",
    )


@csrf_exempt
def ceiling_create(request: HttpRequest) -> HttpResponse:
    """An order placed with the service's locking and checks, by hand, and nothing else.

    The body is the service's (`shipping_address`, `items`) plus the
    `customer` id, since nothing authenticates. In one transaction: the
    customer's row locked (FOR NO KEY UPDATE) and its pending orders and units
    counted, the products locked in primary-key order, stock checked and taken
    in one UPDATE, the order and its lines inserted. No validation beyond
    that, no throttle, and the answer is the new order's id and total, not the
    detail read back.
    """
    body = orjson.loads(request.body)
    quantities = {line["product"]: line["quantity"] for line in body["items"]}
    with transaction.atomic():
        customer = Customer.objects.select_for_update(no_key=True).get(pk=body["customer"])
        pending = Order.objects.filter(customer=customer, status="pending").aggregate(
            orders=Count("id", distinct=True), units=Coalesce(Sum("items__quantity"), 0)
        )
        if (
            customer.is_blocked
            or pending["orders"] >= settings.ORDERS_MAX_PENDING
            or pending["units"] + sum(quantities.values()) > settings.ORDERS_MAX_PENDING_UNITS
        ):
            return HttpResponse(status=409)
        products = {
            product.pk: product
            for product in Product.objects.select_for_update()
            .filter(pk__in=quantities)
            .order_by("pk")
            .only("id", "price", "stock")
        }
        if len(products) != len(quantities) or any(
            products[pk].stock < quantity for pk, quantity in quantities.items()
        ):
            return HttpResponse(status=409)
        Product.objects.filter(pk__in=quantities).update(
            stock=Case(
                *(When(pk=pk, then=F("stock") - Value(q)) for pk, q in quantities.items()),
                default=F("stock"),
            )
        )
        order = Order.objects.create(
            customer=customer,
            shipping_address=body["shipping_address"],
            total=sum((products[pk].price * q for pk, q in quantities.items()), Decimal("0")),
        )
        OrderItem.objects.bulk_create(
            OrderItem(order=order, product_id=pk, quantity=q, unit_price=products[pk].price)
            for pk, q in quantities.items()
        )
    return HttpResponse(
        orjson.dumps({"id": order.pk, "total": str(order.total)}),
        status=201,
        content_type="application/json",
    )


urlpatterns = [
    path("bench/naive/", naive_orders),
    path("bench/ceiling/", ceiling_orders),
    path("bench/nested-ceiling/", ceiling_nested_orders),
    path("bench/create-ceiling/", ceiling_create),
    *peer_urlpatterns,
    *service_urlpatterns,
]
