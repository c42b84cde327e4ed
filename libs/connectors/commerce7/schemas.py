"""Commerce7 vendor models (v1 API), field names as Commerce7 spells them."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..base.models import InboundModel, OutboundModel

# Inbound models declare every field optional: whether an order is usable is decided by
# orders.parse_order, which reports missing fields as issues instead of failing validation.
# A field of the wrong JSON type (a list where an object belongs) still fails validation.


class CustomerEmail(InboundModel):
    """One entry of `customer.emails[]`."""

    email: str | None = None


class CustomerPhone(InboundModel):
    """One entry of `customer.phones[]`."""

    phone: str | None = None


class Customer(InboundModel):
    """`customer` of an order."""

    id: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    emails: list[CustomerEmail] = Field(default_factory=list)
    phone: str | None = None
    phones: list[CustomerPhone] = Field(default_factory=list)
    birthDate: str | None = None


class Address(InboundModel):
    """`billTo` / `shipTo` of an order."""

    firstName: str | None = None
    lastName: str | None = None
    company: str | None = None
    phone: str | None = None
    address: str | None = None
    address2: str | None = None
    city: str | None = None
    stateCode: str | None = None
    zipCode: str | None = None
    countryCode: str | None = None
    birthDate: str | None = None


class Shipping(InboundModel):
    """One entry of `shipping[]`: the shipping method the customer chose; price in cents."""

    carrier: str | None = None
    service: str | None = None
    code: str | None = None
    title: str | None = None
    price: int | None = None


class Item(InboundModel):
    """One entry of `items[]`; price in cents per unit."""

    id: str | None = None
    sku: str | None = None
    productId: str | None = None
    productVariantId: str | None = None
    purchaseTitle: str | None = None
    productVariantTitle: str | None = None
    quantity: int | None = None
    quantityFulfilled: int | None = None
    price: int | None = None
    type: str | None = None
    weight: float | None = None
    hasShipping: bool | None = None
    volumeInMl: float | None = None


class FulfillmentItem(InboundModel):
    """One entry of `fulfillments[].items[]`."""

    id: str | None = None
    quantityFulfilled: int | None = None


class FulfillmentShipped(InboundModel):
    """`fulfillments[].shipped`, mirroring the request body (UNVERIFIED on reads)."""

    carrier: str | None = None
    trackingNumbers: list[str] = Field(default_factory=list)


class Fulfillment(InboundModel):
    """One entry of `fulfillments[]`, also the body answered by a fulfillment POST."""

    id: str | None = None
    type: str | None = None
    fulfillmentDate: str | None = None
    packageCount: int | None = None
    inventoryLocationId: str | None = None
    items: list[FulfillmentItem] = Field(default_factory=list)
    shipped: FulfillmentShipped | None = None


class Promotion(InboundModel):
    """One entry of `promotions[]`; values in cents (Commerce7 shows discounts as negatives)."""

    id: str | None = None
    promotionId: str | None = None
    title: str | None = None
    productValue: int | None = None
    shippingValue: int | None = None
    totalValue: int | None = None


class SelectedShippingOptions(InboundModel):
    """`selectedShippingOptions`: where Commerce7 keeps the customer's requested ship date."""

    shippingServiceId: str | None = None
    requestedShipDate: str | None = None


class Order(InboundModel):
    """A Commerce7 order as `GET /order/{id}` and order webhooks return it."""

    id: str | None = None
    orderNumber: int | str | None = None
    orderSubmittedDate: str | None = None
    orderPaidDate: str | None = None
    orderFulfilledDate: str | None = None
    createdAt: str | None = None
    updatedAt: str | None = None
    paymentStatus: str | None = None
    complianceStatus: str | None = None
    fulfillmentStatus: str | None = None
    shippingStatus: str | None = None
    channel: str | None = None
    orderDeliveryMethod: str | None = None
    purchaseType: str | None = None
    orderSource: str | None = None
    refundOrderId: str | None = None
    refundOrderNumber: int | str | None = None
    previousOrderId: str | None = None
    previousOrderNumber: int | str | None = None
    pickupBy: Any = None
    carryOut: Any = None
    customer: Customer | None = None
    customerId: str | None = None
    billTo: Address | None = None
    shipTo: Address | None = None
    shipping: list[Shipping] = Field(default_factory=list)
    items: list[Item] = Field(default_factory=list)
    fulfillments: list[Fulfillment] = Field(default_factory=list)
    promotions: list[Promotion] = Field(default_factory=list)
    selectedShippingOptions: SelectedShippingOptions | None = None
    requestedShipDate: str | None = None
    giftMessage: str | None = None
    shippingInstructions: str | None = None
    tags: list[Any] = Field(default_factory=list)
    metaData: dict[str, Any] | None = None
    appData: dict[str, Any] | None = None
    currencyCode: str | None = None
    subTotal: int | None = None
    shipTotal: int | None = None
    taxTotal: int | None = None
    tipTotal: int | None = None
    total: int | None = None


class Commerce7Webhook(InboundModel):
    """An order webhook: `{object, action, payload, user, tenantId}`; payload is the order."""

    object: str
    action: str
    payload: Order
    user: Any = None
    tenantId: str


class ErrorBody(InboundModel):
    """Commerce7's error JSON: `{statusCode, type, message, errors[]}`."""

    statusCode: int | None = None
    type: str | None = None
    message: str | None = None
    errors: list[Any] = Field(default_factory=list)


class FulfillmentShippedRequest(OutboundModel):
    """`shipped` of a fulfillment request."""

    carrier: str
    trackingNumbers: list[str] = Field(min_length=1)


class FulfillmentAllRequest(OutboundModel):
    """Body of `POST /order/{id}/fulfillment/all`."""

    type: str
    fulfillmentDate: str
    sendTransactionEmail: bool
    shipped: FulfillmentShippedRequest | None = None
    packageCount: int | None = Field(default=None, ge=0)


class OrderUpdateRequest(OutboundModel):
    """Body of `PUT /order/{id}`: only the fields we change."""

    shippingStatus: str | None = None
    metaData: dict[str, Any] | None = None
