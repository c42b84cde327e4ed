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
    "internalComments",
    "deliveryInstructions",
    "currencyCode",
    "total",
    "lineItems",
)
