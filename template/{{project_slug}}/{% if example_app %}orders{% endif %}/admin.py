"""The admin: products and customers freely; orders only their status and address.

Placing and deleting orders goes through the services, which keep stock right,
so the admin neither adds nor removes orders or their lines.
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Customer, Order, OrderItem, Product


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
    readonly_fields = ("customer", "total", "created_at")
    inlines = (OrderItemInline,)

    def has_add_permission(self, _request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, _request: HttpRequest, _obj: Any = None) -> bool:
        return False
