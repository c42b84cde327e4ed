"""Cin7 Omni's JSON shapes, field names as Cin7 spells them (API v1, camelCase)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from ..base.models import InboundModel, OutboundModel
from .codes import ETD_FIELD


class LineItem(InboundModel):
    id: int | None = None
    code: str | None = None  # the SKU
    name: str | None = None
    qty: float | None = None
    qtyShipped: float | None = None  # read-only: moves when the order is dispatched
    unitPrice: float | None = None
    discount: float | None = None
    option1: str | None = None
    option2: str | None = None
    option3: str | None = None
    sort: int | None = None


class SalesOrder(InboundModel):
    # `populate_by_name` lets tests build one by field name; JSON carries the alias.
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True, populate_by_name=True)

    id: int
    reference: str | None = None
    createdDate: str | None = None
    modifiedDate: str | None = None
    stage: str | None = None
    status: str | None = None  # "Draft" | "Approved" | "Void", or 0 | 1 | 2
    isApproved: bool | None = None
    estimatedDeliveryDate: str | None = Field(default=None, alias=ETD_FIELD)
    dispatchedDate: str | None = None
    trackingCode: str | None = None
    logisticsCarrier: str | None = None
    freightTotal: float | None = None
    freightDescription: str | None = None
    memberId: int | None = None
    memberEmail: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    company: str | None = None
    email: str | None = None
    phone: str | None = None
    mobile: str | None = None
    deliveryFirstName: str | None = None
    deliveryLastName: str | None = None
    deliveryCompany: str | None = None
    deliveryAddress1: str | None = None
    deliveryAddress2: str | None = None
    deliveryCity: str | None = None
    deliveryState: str | None = None
    deliveryPostalCode: str | None = None
    deliveryCountry: str | None = None
    billingFirstName: str | None = None
    billingLastName: str | None = None
    billingCompany: str | None = None
    billingAddress1: str | None = None
    billingAddress2: str | None = None
    billingCity: str | None = None
    billingState: str | None = None
    billingPostalCode: str | None = None
    billingCountry: str | None = None
    branchId: int | None = None
    internalComments: str | None = None
    deliveryInstructions: str | None = None
    currencyCode: str | None = None
    total: float | None = None
    discountTotal: float | None = None  # UNVERIFIED names: see codes.DISCOUNT_FIELDS
    discountDescription: str | None = None
    voucherCode: str | None = None
    lineItems: list[LineItem] = Field(default_factory=list)


class RowResult(InboundModel):
    """One row of a POST/PUT answer: HTTP 200 can hold failed rows."""

    index: int | None = None
    id: int | None = None
    success: bool = False
    errors: list[str] = Field(default_factory=list)


class DispatchUpdate(OutboundModel):
    """A partial SalesOrder for `PUT /v1/SalesOrders`: the id plus what changes."""

    id: int
    stage: str
    trackingCode: str
    dispatchedDate: str | None = None
    logisticsCarrier: str | None = None
