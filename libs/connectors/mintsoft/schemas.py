"""Mintsoft's models, with Mintsoft's PascalCase field names kept as they are."""

from __future__ import annotations

from pydantic import Field

from ..base.models import InboundModel, OutboundModel

# -- what we send


class NameValue(OutboundModel):
    Name: str
    Value: str


class NewOrderItem(OutboundModel):
    SKU: str
    Quantity: int = Field(ge=1)
    UnitPrice: float | None = None
    Details: str | None = None


class NewOrder(OutboundModel):
    """The body of `PUT /api/Order` (the fields we fill; Mintsoft takes more)."""

    OrderNumber: str
    ExternalOrderReference: str
    ClientId: int | None = None
    WarehouseId: int | None = None
    FirstName: str | None = None
    LastName: str | None = None
    CompanyName: str | None = None
    Address1: str
    Address2: str | None = None
    Address3: str | None = None
    Town: str | None = None
    County: str | None = None
    PostCode: str | None = None
    Country: str
    Email: str | None = None
    Phone: str | None = None
    CourierService: str | None = None
    Channel: str | None = None
    Currency: str | None = None
    DeliveryNotes: str | None = None
    GiftMessages: str | None = None
    OrderValue: float | None = None
    OrderNameValues: list[NameValue] = Field(default_factory=list)
    OrderItems: list[NewOrderItem] = Field(min_length=1)


class NewConnectAction(OutboundModel):
    """The body of `PUT /api/Order/{id}/ConnectActions`: where Mintsoft posts the order on
    despatch (ExtraCode1) and on cancellation (ExtraCode2)."""

    Type: str = "API"
    SourceOrderId: str
    Complete: bool = False
    ExtraCode1: str
    ExtraCode2: str


class NewProduct(OutboundModel):
    """The body of `PUT /api/Product` (Swagger's StockProduct: SKU, Name, Weight required)."""

    SKU: str
    Name: str
    Weight: float = 0


# -- what Mintsoft sends


class OrderNameValueIn(InboundModel):
    Name: str = ""
    Value: str | None = None


class Order(InboundModel):
    """An order as `GET /api/Order/{id}` (and a Connect Action callback) shows it."""

    ID: int
    OrderNumber: str = ""
    ExternalOrderReference: str | None = None
    OrderStatusId: int | None = None
    TrackingNumber: str | None = None
    TrackingURL: str | None = None
    CourierServiceId: int | None = None
    CourierServiceName: str | None = None
    DespatchDate: str | None = None
    ClientId: int | None = None
    LastUpdated: str | None = None
    OrderNameValues: list[OrderNameValueIn] = Field(default_factory=list)


class CreateResult(InboundModel):
    """One row of the `PUT /api/Order` answer."""

    OrderId: int | None = None
    OrderNumber: str | None = None
    Success: bool = False
    OrderStatus: str | None = None
    Message: str | None = None


class ToolkitResult(InboundModel):
    """Mintsoft's generic operation result."""

    ID: int | None = None
    Success: bool = False
    Message: str | None = None
    WarningMessage: str | None = None
