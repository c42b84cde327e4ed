"""RateQuoteService: rate quotes with the tenant's markup, and freight onto the channel's order.

Translation only (the work is in rate_quotes.py): requests checked, callers checked first (any
caller granted the tenant may quote; writing freight changes the channel's order, so it needs
the operator role), outcomes as protos, errors as the status codes the proto lists. A vendor's
error keeps its reason code at the start of the message ("RATE_LIMITED: ...").
"""

from __future__ import annotations

import grpc
from ordersync.common.v1 import money_pb2
from ordersync.dispatch.v1 import rates_service_pb2 as pb
from ordersync.dispatch.v1 import rates_service_pb2_grpc as pb_grpc

from fulfillment_dispatch.domain.rate_markup import plain
from fulfillment_dispatch.rate_quotes import (
    FreightChoice,
    PricedQuote,
    RateQuoter,
    RatesBadRequest,
    RatesNotFound,
    RatesUnsupported,
)
from libs.connectors.base.errors import (
    ConnectorError,
    InvalidRequest,
    InvalidResponse,
    NotFound,
    RateLimited,
    Timeout,
    Unavailable,
)
from libs.platform.auth import OPERATOR, GrpcAccess
from libs.platform.grpc_server import ServiceBinding, abort, bind

MAX_CARRIERS = 20


def rate_quote_binding(pool, accounts, access: GrpcAccess) -> ServiceBinding:
    """The service as the gRPC server registers it."""
    return bind(pb, pb_grpc, "RateQuoteService", RateQuoteServicer(RateQuoter(pool, accounts), access))


class RateQuoteServicer(pb_grpc.RateQuoteServiceServicer):
    """Thin: requests into RateQuoter calls, their outcomes into responses."""

    def __init__(self, quoter: RateQuoter, access: GrpcAccess):
        self._quoter = quoter
        self._access = access

    async def QuoteRates(self, request, context: grpc.aio.ServicerContext) -> pb.QuoteRatesResponse:
        await self._access.require(context, request.tenant_id)
        which = request.WhichOneof("order")
        if which is None:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "give order_id or inline_order")
        if len(request.carriers) > MAX_CARRIERS or not all(request.carriers):
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"carriers: 1 to {MAX_CARRIERS} non-empty codes")
        quotes = await _answer(
            context,
            self._quoter.quote(
                request.tenant_id,
                request.provider_account,
                order_id=request.order_id,
                order=request.inline_order if which == "inline_order" else None,
                carriers=list(request.carriers),
            ),
        )
        return pb.QuoteRatesResponse(
            provider_account=quotes.provider_account,
            markup_percent=plain(quotes.markup_percent),
            quotes=[_quote(q) for q in quotes.quotes],
        )

    async def WriteFreight(self, request, context: grpc.aio.ServicerContext) -> pb.WriteFreightResponse:
        caller = await self._access.require(context, request.tenant_id, OPERATOR)
        if request.WhichOneof("order") is None:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "give order_id or channel_order_id")
        if not request.HasField("total"):
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "total is required: a quote's total")
        choice = FreightChoice(request.total.currency_code, request.total.minor_units, request.service_name)
        done = await _answer(
            context,
            self._quoter.write_freight(
                request.tenant_id,
                request.channel_account,
                choice,
                actor=caller.name,
                order_id=request.order_id,
                channel_order_id=request.channel_order_id,
            ),
        )
        return pb.WriteFreightResponse(
            channel_account=done.channel_account, channel_order_id=done.channel_order_id, written=done.written
        )


def _quote(priced: PricedQuote) -> pb.RateQuote:
    quote, price = priced.quote, priced.price
    currency = quote.currency_code
    return pb.RateQuote(
        carrier=quote.carrier,
        carrier_code=quote.carrier_code,
        service_code=quote.service,
        service_name=quote.service_name,
        base_amount=pb.DecimalAmount(currency_code=currency, value=plain(price.base)),
        markup_amount=pb.DecimalAmount(currency_code=currency, value=plain(price.markup)),
        total=money_pb2.Money(currency_code=currency, minor_units=price.total_minor_units),
    )


async def _answer(context: grpc.aio.ServicerContext, call):
    """Await the work, turning its refusals into status codes with their messages."""
    try:
        return await call
    except RatesBadRequest as exc:
        await abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except RatesNotFound as exc:
        await abort(context, grpc.StatusCode.NOT_FOUND, str(exc))
    except RatesUnsupported as exc:
        await abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    except ConnectorError as exc:
        await abort(context, status_of(exc), str(exc))


def status_of(error: ConnectorError) -> grpc.StatusCode:
    """The status code of a vendor's error: what the caller can do about it.

    Our own check of the request (an InvalidRequest before any call, so without an HTTP status)
    is the caller's argument; the vendor refusing the account's call is the account's state.
    """
    if isinstance(error, RateLimited):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(error, Unavailable | Timeout):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(error, InvalidResponse):
        return grpc.StatusCode.INTERNAL
    if isinstance(error, NotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(error, InvalidRequest) and error.status_code is None:
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.FAILED_PRECONDITION
