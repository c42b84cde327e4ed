"""CellarPass JSON shapes (the stand-in, ours), field names as the stand-in spells them.

Amounts may arrive as JSON numbers or strings; both are kept as text and converted exactly by
reservations.py. `bookedAt`, `orderType` and customer types' `sourceId` are our extensions of
the stand-in (see README).
"""

from __future__ import annotations

from pydantic import Field

from ..base.models import InboundModel


class Address(InboundModel):
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    state: str | None = None
    zipCode: str | None = None
    country: str | None = None


class Guest(InboundModel):
    firstName: str | None = None
    lastName: str | None = None
    email: str | None = None
    phone: str | None = None
    address: Address | None = None


class Reservation(InboundModel):
    reservationId: str
    bookingCode: str | None = None
    eventId: str | None = None
    eventName: str | None = None
    eventSku: str | None = None
    eventDate: str | None = None  # YYYY-MM-DD
    eventStartTime: str | None = None  # e.g. "14:00"
    guestCount: int | None = None
    total: str | None = None
    totalPaid: str | None = None
    balanceDue: str | None = None
    isComplimentary: bool = False
    status: str | None = None  # Booked | Paid | Cancelled | NoShow | Completed
    bookingSource: str | None = None  # B/O | WGT | REF | CON | AFF | ...
    guest: Guest | None = None
    guestNotes: str | None = None
    customerTypes: list[str] = Field(default_factory=list)
    syncStatus: str | None = None  # Pending | Processed | Error
    externalOrderId: str | None = None
    updatedAt: str | None = None
    bookedAt: str | None = None  # ours: when the guest booked (ISO-8601 UTC)
    orderType: str | None = None  # ours: Reservation | Ticket


class ReservationPage(InboundModel):
    page: int
    pageSize: int
    total: int
    reservations: list[dict] = Field(default_factory=list)  # validated one by one


class CustomerType(InboundModel):
    id: str
    name: str
    sourceId: str | None = None  # ours: the VinSuite MemberTypeID it mirrors
