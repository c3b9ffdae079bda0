"""Errors of the orders domain.

They are APIExceptions, so core.errors gives them the service's one error
shape with their own code; the services raise them and the views need not
translate anything.
"""

from rest_framework import status
from rest_framework.exceptions import APIException


class InsufficientInventory(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Not enough stock to fulfil this order."
    default_code = "insufficient_inventory"


class PendingLimitReached(APIException):
    """The customer holds as many pending orders, or units in them, as one may."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "Too many pending orders: wait until one is paid or cancelled."
    default_code = "pending_limit_reached"


class CustomerBlocked(APIException):
    status_code = status.HTTP_403_FORBIDDEN
    default_detail = "This customer account is blocked and cannot place orders."
    default_code = "customer_blocked"


class OrderNotPending(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Only pending orders can be changed."
    default_code = "order_not_pending"


class OrderDeleteWindowClosed(APIException):
    status_code = status.HTTP_403_FORBIDDEN
    default_detail = "Orders can be deleted only within 24 hours of being placed."
    default_code = "delete_window_closed"


class ProductInUse(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This product appears in orders and cannot be deleted; set its stock to 0."
    default_code = "product_in_use"
