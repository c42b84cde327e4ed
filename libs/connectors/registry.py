"""The connector registry: every connector ordersync ships, by id.

Adding a vendor is a folder under libs/connectors/ with a `connector.py` declaring its
connector, plus one line in BUILT_IN below (see docs/adding-a-connector.md). Services look
connectors up here by the `channel`/`provider` on an order and never import a vendor package.

Connectors outside this repository are loaded by module name from ORDERSYNC_CONNECTOR_MODULES
(comma-separated); each such module exposes a `CONNECTOR` object, as the built-in ones do.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator

from libs.connectors.base.contract import ChannelConnector, Connector, ProviderConnector, Role

BUILT_IN = (
    "libs.connectors.commerce7.connector",
    "libs.connectors.vinoshipper.connector",
    "libs.connectors.cin7.connector",
    "libs.connectors.shipstation.connector",
    "libs.connectors.groupon.connector",
    "libs.connectors.mintsoft.connector",
    "libs.connectors.vinsuite.connector",
    "libs.connectors.cellarpass.connector",
)
EXTRA_MODULES_ENV = "ORDERSYNC_CONNECTOR_MODULES"


class UnknownConnector(LookupError):
    """No connector of that id is registered (or it does not serve the side asked for)."""


class Registry:
    """Connectors by id; `channel(id)` and `provider(id)` return the typed side."""

    def __init__(self, connectors: list[Connector] | None = None):
        self._connectors: dict[str, Connector] = {}
        for connector in connectors or []:
            self.register(connector)

    def register(self, connector: Connector) -> None:
        """Add a connector; its roles must match the classes it implements."""
        info = connector.info
        if info.id in self._connectors:
            raise ValueError(f"connector {info.id!r} is registered twice")
        if (Role.CHANNEL in info.roles) != isinstance(connector, ChannelConnector):
            raise ValueError(f"connector {info.id!r}: declares channel role but is no ChannelConnector, or the reverse")
        if (Role.PROVIDER in info.roles) != isinstance(connector, ProviderConnector):
            raise ValueError(
                f"connector {info.id!r}: declares provider role but is no ProviderConnector, or the reverse"
            )
        self._connectors[info.id] = connector

    def get(self, connector_id: str) -> Connector:
        try:
            return self._connectors[connector_id]
        except KeyError:
            known = ", ".join(sorted(self._connectors))
            raise UnknownConnector(f"no connector {connector_id!r} is registered (known: {known})") from None

    def channel(self, connector_id: str) -> ChannelConnector:
        connector = self.get(connector_id)
        if not isinstance(connector, ChannelConnector):
            raise UnknownConnector(f"connector {connector_id!r} is not a sales channel")
        return connector

    def provider(self, connector_id: str) -> ProviderConnector:
        connector = self.get(connector_id)
        if not isinstance(connector, ProviderConnector):
            raise UnknownConnector(f"connector {connector_id!r} is not a fulfilment provider")
        return connector

    def __contains__(self, connector_id: object) -> bool:
        return connector_id in self._connectors

    def __iter__(self) -> Iterator[Connector]:
        return iter(self._connectors.values())

    def ids(self) -> list[str]:
        return sorted(self._connectors)


def load(modules: tuple[str, ...] | list[str] | None = None) -> Registry:
    """A registry of the built-in connectors plus those named in ORDERSYNC_CONNECTOR_MODULES."""
    if modules is None:
        extra = [m.strip() for m in os.environ.get(EXTRA_MODULES_ENV, "").split(",") if m.strip()]
        modules = [*BUILT_IN, *extra]
    return Registry([importlib.import_module(name).CONNECTOR for name in modules])


_default: Registry | None = None


def default_registry() -> Registry:
    """The process's registry, loaded once."""
    global _default
    if _default is None:
        _default = load()
    return _default
