"""Cin7 Omni's names and values, as tables."""

from __future__ import annotations

CHANNEL_NAME = "cin7"
DEFAULT_CURRENCY = "USD"

# OrderStatus is sent as its name or its number depending on the serialiser; both are read.
STATUS_APPROVED = "Approved"
ORDER_STATUSES = {"0": "Draft", "1": "Approved", "2": "Void", "draft": "Draft", "approved": "Approved", "void": "Void"}

# The estimated-delivery date shown as "ETD" in Cin7's UI. The API property's name is not
# confirmed by the public help pages (UNVERIFIED); the simulator serves it under this name.
ETD_FIELD = "estimatedDeliveryDate"

# The order's discount and coupon: in Cin7 Omni's SalesOrder resource model (OpenAPI document),
# not in the public help pages the rest follows (UNVERIFIED); the simulator serves them so.
DISCOUNT_FIELDS = ("discountTotal", "discountDescription", "voucherCode")

# What a line's option1..option3 are called when the tenant names them not (they are product
# options whose names each Cin7 account chooses, often colour and size).
DEFAULT_OPTION_NAMES = ("Option 1", "Option 2", "Option 3")

# What `GET /v1/SalesOrders?fields=` asks for: only what normalisation and the rules read.
ORDER_FIELDS = (
    "id",
    "reference",
    "createdDate",
    "modifiedDate",
    "stage",
    "status",
    "isApproved",
    ETD_FIELD,
    "dispatchedDate",
    "trackingCode",
    "logisticsCarrier",
    "freightTotal",
    "freightDescription",
    "memberId",
    "memberEmail",
    "firstName",
    "lastName",
    "company",
    "email",
    "phone",
    "mobile",
    "deliveryFirstName",
    "deliveryLastName",
    "deliveryCompany",
    "deliveryAddress1",
    "deliveryAddress2",
    "deliveryCity",
    "deliveryState",
    "deliveryPostalCode",
    "deliveryCountry",
    "billingFirstName",
    "billingLastName",
    "billingCompany",
    "billingAddress1",
    "billingAddress2",
    "billingCity",
    "billingState",
    "billingPostalCode",
    "billingCountry",
    "branchId",
    "internalComments",
    "deliveryInstructions",
    "currencyCode",
    "total",
    *DISCOUNT_FIELDS,
    "lineItems",
)
