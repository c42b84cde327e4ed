"""Vinoshipper vendor models (API v3 producer endpoints), field names as Vinoshipper spells them."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, PlainSerializer

from ..base.models import InboundModel, OutboundModel
from . import codes

# Vinoshipper amounts are decimal dollars. They are held as exact Decimals with two places and
# written as JSON numbers (24.99, not "24.99"): a two-place Decimal converts to the float
# whose shortest text is exactly those digits, so the wire text is exact.
Dollars = Annotated[
    Decimal,
    Field(max_digits=14, decimal_places=2),
    PlainSerializer(float, return_type=float, when_used="json"),
]


class CustomerAddress(OutboundModel):
    """`customer.address` of a create request."""

    street1: str
    street2: str | None = None
    city: str
    postalCode: str
    stateCode: str


class CustomerRequest(OutboundModel):
    """`customer` of a create request: the buyer."""

    firstName: str
    lastName: str
    email: str | None = None
    phone: str | None = None
    dateOfBirth: str | None = None
    address: CustomerAddress | None = None


class PhoneRequest(OutboundModel):
    """`shipToAddress.phone`: digits and the calling code (1 for the US)."""

    number: str
    country: int | None = None


class ShipToAddressRequest(OutboundModel):
    """`shipToAddress` of a create request: where the package goes."""

    street1: str
    street2: str | None = None
    city: str
    postalCode: str
    stateCode: str
    country: str | None = None
    phone: PhoneRequest | None = None
    upsAccessPointId: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    company: str | None = None


class ProductRequest(OutboundModel):
    """One entry of `products[]`: `productId` is the SKU when `productIdType` is "SKU"."""

    productId: str
    quantity: int = Field(ge=1)
    price: Dollars | None = None


class ShippingRateRequest(OutboundModel):
    """`shippingRate`: carrier and UPS service code."""

    carrier: str
    rateCode: str


class CreateOrderRequest(OutboundModel):
    """Body of `POST /api/v3/p/orders` (also used for `/check-compliance`)."""

    orderNumber: str
    sourceUrl: str | None = None
    orderDate: str | None = None
    customer: CustomerRequest
    shipToAddress: ShipToAddressRequest
    productIdType: Literal["SKU", "VS_ID"]
    products: list[ProductRequest] = Field(min_length=1)
    shippingRate: ShippingRateRequest
    totalPrice: Dollars | None = None
    shippingPrice: Dollars | None = None
    tax: Dollars | None = None
    discount: Dollars | None = None
    tipAmount: Dollars | None = None
    isPaid: bool
    specialInstructions: str | None = None
    metaFields: dict[str, str] | None = None
    requestedShipDate: str | None = None
    suppressCustomerEmails: bool


class CancelOrderRequest(OutboundModel):
    """Body of `POST /api/v3/p/orders/{orderNumber}/cancel` (STAND-IN: shape not published)."""

    cancelReason: str


class Shipper(InboundModel):
    """`shipping.shipper`: who ships (a fulfilment center or the producer)."""

    id: str | None = None
    name: str | None = None
    isFulfillmentCenter: bool | None = None


class Package(InboundModel):
    """One entry of `shipping.packages[]`; `trackingNumber` is null until a label exists."""

    carrier: str | None = None
    trackingNumber: str | None = None
    box: Any = None


class ShippingDetail(InboundModel):
    """`shipping` of an order detail."""

    carrier: str | None = None
    rateCode: str | None = None
    rateDescription: str | None = None
    shipper: Shipper | None = None
    packages: list[Package] = Field(default_factory=list)


class OrderDetail(InboundModel):
    """`GET /api/v3/p/orders/{orderNumber}` (and the create response)."""

    orderNumber: str | None = None
    status: str | None = None
    orderStatus: str | None = None
    isCompliant: bool | None = None
    orderProblems: list[Any] = Field(default_factory=list)
    purchasedAt: str | None = None
    shippedAt: str | None = None
    deliveredAt: str | None = None
    canceledAt: str | None = None
    cancelReason: str | None = None
    shipping: ShippingDetail | None = None


class VinoshipperWebhook(InboundModel):
    """A thin webhook `{identifier, subject, event, href, hrefV3}`: always re-fetch `hrefV3`."""

    identifier: str
    subject: str
    event: str
    href: str | None = None
    hrefV3: str | None = None

    @property
    def is_order_event(self) -> bool:
        """True for subject ORDER, the only subject ordersync acts on."""
        return self.subject.upper() == codes.WEBHOOK_SUBJECT_ORDER

    @property
    def may_change_shipment(self) -> bool:
        """False for order events that cannot move a shipment (the order was created or approved).

        Those are acknowledged without reading the order back, which halves the provider calls
        per order; any other event, known or not, is read back.
        """
        return self.event.upper() not in codes.EVENTS_WITHOUT_SHIPMENT_NEWS


class ErrorBody(InboundModel):
    """Vinoshipper's error JSON: `{message, errors[]}`, plus `orderProblems[]` on 422."""

    message: str | None = None
    errors: list[Any] = Field(default_factory=list)
    orderProblems: list[Any] = Field(default_factory=list)


def problem_texts(problems: Iterable[Any]) -> list[str]:
    """Turn `orderProblems[]` entries (text, or objects with a message) into text."""
    texts = []
    for problem in problems:
        if isinstance(problem, dict):
            text = next(
                (
                    str(problem[key])
                    for key in ("message", "description", "problem", "code", "type")
                    if problem.get(key)
                ),
                "",
            )
        else:
            text = str(problem) if problem is not None else ""
        if text.strip():
            texts.append(text.strip())
    return texts
