"""CellarPass tables: the stand-in API's words and what they mean for the canonical order."""

from __future__ import annotations

from ordersync.common.v1 import order_pb2

from libs.connectors.base import issues

CHANNEL_NAME = "cellarpass"
CURRENCY = "USD"  # CellarPass sells US wineries' reservations; the stand-in names no currency
MAX_PAGE_SIZE = 50  # the stand-in's pageSize bound (the help pages recommend batches of about 50)

# Reservation `status` values (stand-in, ours).
CANCELLED_STATUSES = frozenset({"Cancelled", "NoShow"})

# `orderType` (ours): only reservations are synced; CellarPass never syncs ticket orders.
ORDER_TYPE_RESERVATION = "Reservation"
ORDER_TYPE_TICKET = "Ticket"

# `bookingSource` -> where in CellarPass the reservation was placed; anything else is the web.
ORIGINS = {"B/O": order_pb2.ORDER_ORIGIN_ADMIN}
DEFAULT_ORIGIN = order_pb2.ORDER_ORIGIN_WEB

# Line options carrying what the canonical order has no field for (names as CellarPass spells them).
OPTION_BOOKING_SOURCE = "bookingSource"
OPTION_CUSTOMER_TYPE = "customerType"  # one option per customer type of the guest
OPTION_EVENT_ID = "eventId"
OPTION_EVENT_START_TIME = "eventStartTime"

# Payment.status words on the canonical order.
PAYMENT_PAID = "Paid"
PAYMENT_COMPLIMENTARY = "Complimentary"
PAYMENT_BALANCE_DUE = "Balance due"

# The import rules' reason codes: stable, for operators' filters and the failed-import mail.
NOT_PAID = "NOT_PAID"
TICKET_ORDER = "TICKET_ORDER"
CANCELLED = "CANCELLED"
ALREADY_SYNCED = issues.ALREADY_SYNCED
SYNC_STATUS_PROCESSED = "Processed"
