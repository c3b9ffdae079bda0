"""Who may do what with products and orders.

Products: everybody reads, anonymous clients too; only staff write.
Orders: a user sees and changes only their own orders (the selectors never
return anybody else's, so another user's order is a 404, not a 403). Staff
may read every order, for support, but change only their own. The rules of
the orders themselves (pending only, the delete window) are the services'.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from .models import Order


class IsStaffOrReadOnly(BasePermission):
    def has_permission(self, request: Request, _view: Any) -> bool:
        return request.method in SAFE_METHODS or bool(request.user and request.user.is_staff)


class IsOrderOwner(BasePermission):
    """Anybody who can see an order may read it; only its customer may change it."""

    message = "Only the customer who placed this order may change it."

    def has_object_permission(self, request: Request, _view: Any, obj: Order) -> bool:
        return request.method in SAFE_METHODS or obj.customer.user_id == request.user.pk
