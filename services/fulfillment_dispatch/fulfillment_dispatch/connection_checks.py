"""Test Login: does each of a tenant's accounts still get in at its vendor, and if not, why and
what the operator does about it.

Every account whose connector declares Capability.CONNECTION_CHECK (channel or provider) makes one
cheap authenticated call (`check_connection`, e.g. VinSuite's TestConnection), all at once, each
bounded in time. The verdict names the problem (wrong credentials, an inactive web-service
account, a vendor not answering) and says what to do, followed by the vendor's own words. Those
words pass through `redact` and lose every value of the account's secret settings, so neither
the answer nor the log ever holds a credential.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from libs.connectors.base.contract import (
    Capability,
    ConnectionCheck,
    ConnectionChecks,
    ConnectionProblem,
    Connector,
    Role,
)
from libs.connectors.base.errors import ConnectorError, Unauthorized, redact
from libs.platform.accounts import AccountClients
from libs.platform.secrets import Secret
from libs.platform.tenants import Account

log = logging.getLogger(__name__)

# Settings fields whose values are credentials, by name: their values are cut out of the vendor's
# words even when a vendor echoes them back (redact only knows the shapes of headers). Usernames
# count: the tenants file keeps them as secrets too (VinSuite's partner login).
_SECRET_FIELD_WORDS = ("secret", "password", "token", "key", "username")
MIN_SECRET_CHARS = 4  # shorter values would cut ordinary words out of the message


@dataclass(frozen=True)
class AccountVerdict:
    """The verdict on one account: ok, or the problem and what to do (`detail`)."""

    account: str
    connector: str
    label: str
    ok: bool
    problem: ConnectionProblem | None = None
    detail: str = ""


def advice(problem: ConnectionProblem, label: str, account: str) -> str:
    """What an operator does about `problem` of the tenant's account `account` at vendor `label`."""
    if problem is ConnectionProblem.BAD_CREDENTIALS:
        return (
            f"{label} refused the credentials of account {account!r}: check the web-service username and password"
            f" (or API key) {label} gave you, and the secrets the account's section of the tenants file references"
        )
    if problem is ConnectionProblem.ACCOUNT_INACTIVE:
        return f"the web-service account of {account!r} is not active with {label}: ask {label} to activate it"
    return (
        f"{label} did not answer for account {account!r}: check the account's address and {label}'s service"
        " status, then test again"
    )


class ConnectionTester:
    """Runs Test Login for the API.

    Args:
        accounts: the tenants' accounts and their live clients (shared with the sender, so the
            checks count against each account's rate budget).
        timeout_s: the longest one check may take; a slower vendor is UNREACHABLE.
    """

    def __init__(self, accounts: AccountClients, *, timeout_s: float = 30.0):
        self._accounts = accounts
        self._timeout_s = timeout_s

    async def test_login(self, tenant_id: str) -> list[AccountVerdict]:
        """One verdict per checkable account of the tenant, in the tenants file's order.

        Raises AccountNotConfigured for a tenant that is not configured; a failing account is a
        verdict, not an error.
        """
        tenant = self._accounts.tenant(tenant_id)
        checked = [(a, c) for a in tenant.accounts.values() if (c := self._checker(a)) is not None]
        verdicts = await asyncio.gather(*(self._check(tenant_id, a, c) for a, c in checked))
        for verdict in verdicts:
            log.info(
                "test login",
                extra={"fields": {"tenant_id": tenant_id, "account": verdict.account, "connector": verdict.connector,
                                  "ok": verdict.ok, "problem": verdict.problem.value if verdict.problem else ""}},
            )  # fmt: skip
        return list(verdicts)

    def _checker(self, account: Account) -> Connector | None:
        if account.connector not in self._accounts.registry:
            return None
        connector = self._accounts.registry.get(account.connector)
        if connector.info.can(Capability.CONNECTION_CHECK) and isinstance(connector, ConnectionChecks):
            return connector
        return None

    async def _check(self, tenant_id: str, account: Account, connector: Connector) -> AccountVerdict:
        label = connector.info.label
        check = await self._call(tenant_id, account, connector)
        if check.ok:
            return AccountVerdict(account.name, account.connector, label, True)
        problem = check.problem or ConnectionProblem.UNREACHABLE
        words = without_secrets(check.detail, account.settings)
        detail = advice(problem, label, account.name) + (f" ({label} said: {words})" if words else "")
        return AccountVerdict(account.name, account.connector, label, False, problem, detail)

    async def _call(self, tenant_id: str, account: Account, connector: Any) -> ConnectionCheck:
        # Channel or provider: the same account client either way, opened by the side it plays.
        if Role.CHANNEL in connector.info.roles:
            opened = await self._accounts.channel(tenant_id, account.name)
        else:
            opened = await self._accounts.provider(tenant_id, account.name)
        try:
            return await asyncio.wait_for(connector.check_connection(opened.client, opened.settings), self._timeout_s)
        except TimeoutError:
            return ConnectionCheck(False, ConnectionProblem.UNREACHABLE, f"no answer in {self._timeout_s:g} s")
        except ConnectorError as exc:  # the contract says it never raises; a connector that does is still judged
            problem = (
                ConnectionProblem.BAD_CREDENTIALS if isinstance(exc, Unauthorized) else ConnectionProblem.UNREACHABLE
            )
            return ConnectionCheck(False, problem, exc.message)


def without_secrets(text: str, *settings: Any) -> str:
    """A vendor's words, redacted, with every value of the accounts' secret settings cut out."""
    for value in (v for one in settings for v in _secret_values(one)):
        text = text.replace(value, "[redacted]")
    return redact(text)


def _secret_values(settings: Any, secret: bool = False) -> Iterator[str]:
    """Values of fields named like credentials (or Secret values) in nested settings dataclasses."""
    if isinstance(settings, Secret):
        settings, secret = settings.value, True
    if isinstance(settings, str):
        if secret and len(settings) >= MIN_SECRET_CHARS:
            yield settings
        return
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        for item in dataclasses.fields(settings):
            named_secret = secret or any(word in item.name.lower() for word in _SECRET_FIELD_WORDS)
            yield from _secret_values(getattr(settings, item.name), named_secret)
