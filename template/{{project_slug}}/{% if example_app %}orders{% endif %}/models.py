"""The example domain: customers order products.

The database holds the rules that must never break, whatever code path
writes: stock never below zero, 1 to 100 of a product per line, one line per
product, unique SKUs. The indexes serve the orders list: a customer's orders
newest first, every order newest first (staff), by status, and by total.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

# Every price and total is in this currency (v2 of the API says so in each total).
CURRENCY = "EUR"
MAX_QUANTITY_PER_LINE = 100


class Customer(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer"
    )
    is_blocked = models.BooleanField(
        default=False, help_text="Blocked customers cannot place orders."
    )

    def __str__(self) -> str:
        return str(self.user)


class Product(models.Model):
    name = models.CharField(max_length=200)
    sku = models.CharField("SKU", max_length=64, unique=True)
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0.00"))]
    )
    stock = models.IntegerField(default=0, validators=[MinValueValidator(0)])

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(stock__gte=0), name="orders_product_stock_non_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(price__gte=0), name="orders_product_price_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        SHIPPED = "shipped", "Shipped"
        CANCELLED = "cancelled", "Cancelled"

    # The index (customer, -created_at, -id) below serves every lookup by
    # customer, so the foreign key needs no index of its own.
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    shipping_address = models.TextField(max_length=500)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    # Not auto_now_add: demo data and imports set their own dates.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["customer", "-created_at", "-id"], name="order_customer_created_idx"
            ),
            models.Index(fields=["-created_at", "-id"], name="order_created_idx"),
            models.Index(fields=["status", "-created_at"], name="order_status_created_idx"),
            models.Index(fields=["total", "id"], name="order_total_idx"),
        ]

    def __str__(self) -> str:
        return f"Order {self.pk}"


class OrderItem(models.Model):
    # Lines are read through their order only; (order, product) is indexed
    # by the unique constraint.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items", db_index=False)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_items")
    quantity = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_QUANTITY_PER_LINE)]
    )
    # The product's price when the order was placed.
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["order", "product"], name="orders_item_one_line_per_product"
            ),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1, quantity__lte=MAX_QUANTITY_PER_LINE),
                name="orders_item_quantity_1_to_100",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"
