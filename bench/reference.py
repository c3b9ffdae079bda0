"""Two reference views over the same orders, copied into the benchmarked project.

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

The URLs also mount the peers (plain DRF, django-ninja) of bench/peers.py,
copied next to this file as bench_peers.py.
"""

from __future__ import annotations

import orjson
from django.apps import apps
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.urls import path

from bench_peers import urlpatterns as peer_urlpatterns
from config.urls import *  # noqa: F403
from config.urls import urlpatterns as service_urlpatterns

Order = apps.get_model("orders", "Order")


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


urlpatterns = [
    path("bench/naive/", naive_orders),
    path("bench/ceiling/", ceiling_orders),
    *peer_urlpatterns,
    *service_urlpatterns,
]
