"""The CellarPass connector: reservations pulled on a schedule, sync results posted back.

CellarPass publishes no API; the connector follows our stand-in contract (README). Intake polls
`GET /v1/reservations` on the updatedAt watermark (`cursor.py`); every reservation becomes a
pickup order of type RESERVATION, and CellarPass's sync rules (fully paid or complimentary, no
ticket orders, not cancelled) come back as its rule_failures (`reservations.py`). A reservation
synced to VinSuite cannot be edited there any more (`locked_after_handover`): its later changes
still come back, so intake can record them as locked. Once dispatch has VinSuite's answer the
outcome is posted back per reservation (`report_sync_results`), which CellarPass shows as
Processed or Error. Customer types are the invite lists mirrored from VinSuite's member types;
a connection check reads them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..base.contract import (
    Capability,
    ChannelConnector,
    ClientResources,
    ConnectionCheck,
    ConnectionProblem,
    ConnectorInfo,
    Ignored,
    InviteList,
    Limits,
    OrderPage,
    ParsedOrder,
    Role,
    SecretResolver,
    SyncResult,
)
from ..base.errors import Conflict, ConnectorError, InvalidResponse, NotFound, RateLimited, Unauthorized
from ..base.settings import SectionReader, SettingsError
from . import codes
from .client import BURST, REQUESTS_PER_MINUTE, CellarPassClient
from .cursor import Cursor, advance, decode, instant, is_new
from .customer_types import parse_customer_type, parse_customer_types
from .errors import IntegrationDisabled
from .reservations import build_list_params, parse_list_response, parse_reservation
from .schemas import ReservationPage
from .settings import CellarPassSettings

INACTIVE_DETAIL = "the VinSuite integration is not enabled for this CellarPass account: ask CellarPass support"
BAD_KEY_DETAIL = "CellarPass refused the API key (HTTP 401): check the account's api_key"


class CellarPassConnector(ChannelConnector):
    info = ConnectorInfo(
        id="cellarpass",
        label="CellarPass",
        roles=frozenset({Role.CHANNEL}),
        capabilities=frozenset(
            {
                Capability.PULL_ORDERS,
                Capability.SYNC_RESULTS,
                Capability.INVITE_LISTS,
                Capability.CONNECTION_CHECK,
            }
        ),
        limits=Limits(batch_size=codes.MAX_PAGE_SIZE, requests_per_minute=REQUESTS_PER_MINUTE),
        locked_after_handover=True,
    )

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> CellarPassSettings:
        read = SectionReader(section, resolve, where)
        try:
            settings = CellarPassSettings(
                base_url=read.text("base_url"),
                api_key=read.secret("api_key"),
                page_size=read.positive_int("page_size", codes.MAX_PAGE_SIZE),
                timeout_s=read.positive_number("timeout_s", 15.0),
                start_at=read.text("start_at") if "start_at" in section else "",
            )
        except ValueError as exc:
            if isinstance(exc, SettingsError):
                raise
            raise SettingsError(f"{where}: {exc}") from None
        read.finish()
        return settings

    def open_client(self, settings: CellarPassSettings, resources: ClientResources) -> CellarPassClient:
        limiter = resources.limiter_for(self.info.id, REQUESTS_PER_MINUTE, BURST)
        return CellarPassClient(settings, rate_limiter=limiter)

    # -- pull

    async def fetch_page(
        self, client: CellarPassClient, settings: CellarPassSettings, cursor: str, tenant_id: str
    ) -> OrderPage:
        """The reservations changed since the cursor, one page, oldest change first.

        Raises:
            InvalidRequest: a cursor this connector did not write.
            InvalidResponse: an unreadable page, or a full page without one readable updatedAt
                (the watermark could not move). The errors of CellarPassClient.list_reservations.
        """
        position = decode(cursor)
        if not cursor and settings.start_at:
            position = Cursor(settings.start_at)
        page = await self._read(client, settings, position)
        rows = page.reservations
        full = len(rows) >= settings.page_size
        if position.page > 1:
            rows = [*await self._overlap(client, settings, position, rows), *rows]
        keys: list[tuple[str, str]] = []
        orders: list[ParsedOrder | Ignored] = []
        for index, row in enumerate(rows):
            key = _key(row)
            if key is not None:
                keys.append(key)
                if not is_new(position, *key):
                    continue
            orders.append(parse_reservation(row, tenant_id=tenant_id, index=index))
        if full and not keys:
            raise InvalidResponse("cellarpass list_reservations: a full page without one readable updatedAt")
        more = full and page.total > position.page * settings.page_size
        return OrderPage(orders, advance(position, keys, full=full).encode(), more=more)

    async def _read(self, client: CellarPassClient, settings: CellarPassSettings, position: Cursor) -> ReservationPage:
        params = build_list_params(position, page_size=settings.page_size)
        return parse_list_response(await client.list_reservations(params))

    async def _overlap(
        self, client: CellarPassClient, settings: CellarPassSettings, position: Cursor, rows: list[Any]
    ) -> list[Any]:
        """The rows of the page before, that are not on this one, while walking one instant.

        Reservations only ever leave an instant (a change gives a later updatedAt), so one that
        changed since the page before was read moves the rest a place down, and the first of
        this page onto the page before: reading it again finds that one (the rest are seen).
        """
        before = await self._read(client, settings, replace(position, page=position.page - 1))
        here = {key[0] for key in map(_key, rows) if key is not None}
        return [row for row in before.reservations if (key := _key(row)) is not None and key[0] not in here]

    # -- sync results

    async def report_sync_results(
        self, client: CellarPassClient, settings: CellarPassSettings, results: Sequence[SyncResult]
    ) -> None:
        """Post each result to its reservation (Processed with VinSuite's order id, or Error with
        the reason). Safe to repeat. A refusal about one reservation (unknown, or Processed
        already with another order) does not keep the others from being posted: they are raised
        together at the end, so a repeat does not stop at the same one again.

        Raises:
            NotFound: CellarPass has no reservation of these ack tokens (named; not retryable).
            Conflict: a reservation Processed already with another outcome (named; not retryable).
            The account-wide errors of the client at once (Unauthorized, and the retryable ones:
            the caller repeats the whole call).
        """
        refused: list[tuple[str, ConnectorError]] = []
        for result in results:
            body = {
                "success": result.accepted,
                "externalOrderId": result.provider_reference if result.accepted else "",
                "error": "" if result.accepted else result.failure,
            }
            try:
                await client.post_sync_result(result.ack_token, body)
            except (NotFound, Conflict) as exc:
                refused.append((result.ack_token, exc))
        if refused:
            raise _refusal(refused)

    # -- invite lists (customer types)

    async def list_invite_lists(self, client: CellarPassClient, settings: CellarPassSettings) -> list[InviteList]:
        return parse_customer_types(await client.list_customer_types())

    async def put_invite_list(
        self, client: CellarPassClient, settings: CellarPassSettings, name: str, source_id: str
    ) -> InviteList:
        return parse_customer_type(await client.put_customer_type(name, source_id), "put_customer_type")

    async def remove_invite_list(self, client: CellarPassClient, settings: CellarPassSettings, list_id: str) -> bool:
        return await client.delete_customer_type(list_id)

    # -- connection check

    async def check_connection(self, client: CellarPassClient, settings: CellarPassSettings) -> ConnectionCheck:
        """Read the customer types: ok, or which problem and why. Never raises a ConnectorError."""
        try:
            parse_customer_types(await client.list_customer_types())
        except IntegrationDisabled:
            return ConnectionCheck(False, ConnectionProblem.ACCOUNT_INACTIVE, INACTIVE_DETAIL)
        except Unauthorized:
            return ConnectionCheck(False, ConnectionProblem.BAD_CREDENTIALS, BAD_KEY_DETAIL)
        except RateLimited:
            detail = "CellarPass is rate limiting this account (HTTP 429): try again in a minute"
            return ConnectionCheck(False, ConnectionProblem.UNREACHABLE, detail)
        except ConnectorError as exc:
            return ConnectionCheck(False, ConnectionProblem.UNREACHABLE, f"CellarPass did not answer: {exc.message}")
        return ConnectionCheck(True)


def _refusal(refused: list[tuple[str, ConnectorError]]) -> ConnectorError:
    """One error for the reservations CellarPass refused a result of: NotFound when one is
    unknown (the first thing to look at), else Conflict; every one named."""
    missing = [token for token, exc in refused if isinstance(exc, NotFound)]
    if missing:
        return NotFound(f"cellarpass sync_result: CellarPass has no reservation {', '.join(missing)}")
    names = ", ".join(token for token, _ in refused)
    return Conflict(f"cellarpass sync_result: reservation {names} processed already with another outcome")


def _key(row: Any) -> tuple[str, str] | None:
    """(reservationId, updatedAt) of a raw row, or None when either is unreadable."""
    if not isinstance(row, Mapping):
        return None
    rid, updated = row.get("reservationId"), row.get("updatedAt")
    if not isinstance(rid, str) or not rid.strip() or not isinstance(updated, str):
        return None
    try:
        instant(updated)
    except ValueError:
        return None
    return rid.strip(), updated


CONNECTOR = CellarPassConnector()
