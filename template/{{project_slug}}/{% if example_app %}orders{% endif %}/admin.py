"""The admin: products and customers freely; orders their address, and their status by actions.

Placing, deleting and cancelling orders goes through the services, which keep
stock right: the admin neither adds nor removes orders or their lines, and it
moves an order's status only with the actions below (order_set_status), so a
cancelled order gives its stock back.
"""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Customer, Order, OrderItem, Product
from .services import order_set_status


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("user", "is_blocked")
    list_filter = ("is_blocked",)
    list_select_related = ("user",)
    search_fields = ("user__email",)
    raw_id_fields = ("user",)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "sku", "price", "stock")
    search_fields = ("name", "sku")
    ordering = ("name",)


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    fields = readonly_fields = ("product", "quantity", "unit_price")
    extra = 0
    can_delete = False

    def has_add_permission(self, _request: HttpRequest, _obj: Any = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "customer", "status", "total", "created_at")
    list_filter = ("status",)
    list_select_related = ("customer__user",)
    search_fields = ("customer__user__email",)
    date_hierarchy = "created_at"
    fields = ("customer", "status", "shipping_address", "total", "created_at")
    readonly_fields = ("customer", "status", "total", "created_at")
    inlines = (OrderItemInline,)
    actions = ("mark_paid", "mark_shipped", "cancel")

    def has_add_permission(self, _request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, _request: HttpRequest, _obj: Any = None) -> bool:
        return False

    @admin.action(description="Mark the selected orders as paid")
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._move(request, queryset, Order.Status.PAID)

    @admin.action(description="Mark the selected orders as shipped")
    def mark_shipped(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._move(request, queryset, Order.Status.SHIPPED)

    @admin.action(description="Cancel the selected orders (their stock goes back)")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._move(request, queryset, Order.Status.CANCELLED)

    def _move(self, request: HttpRequest, queryset: QuerySet[Order], status: str) -> None:
        moved, refused = 0, []
        for order in queryset.order_by("pk"):
            try:
                order_set_status(order=order, status=status)
            except ValidationError:
                refused.append(str(order.pk))
            else:
                moved += 1
        if moved:
            self.message_user(request, f"{moved} order(s) now {status}.", messages.SUCCESS)
        if refused:
            self.message_user(
                request,
                f"Left as they were (they cannot become {status}): {', '.join(refused)}.",
                messages.WARNING,
            )
