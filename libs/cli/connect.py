"""Where the services are and how the command presents itself to them.

Every service's address has a variable (ORDERSYNC_<SERVICE>_ADDR) with the local default port.
The operator's bearer token is read from ORDERSYNC_TOKEN (or the variable --token-env names, or
the file --token-file names), never from the command line, which shells and `ps` would show;
the same caller must be granted the tenant at every service it asks. TLS as every gRPC client:
ORDERSYNC_GRPC_CA_FILE (and ORDERSYNC_GRPC_CLIENT_CERT_FILE/KEY_FILE for mTLS).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc

from libs.platform.auth import bearer, cli_token
from libs.platform.config import grpc_client_tls_from_env
from libs.platform.grpc_server import channel_credentials

# service -> (address variable, default address)
ADDRESSES: Mapping[str, tuple[str, str]] = {
    "order-intake": ("ORDERSYNC_INTAKE_ADDR", "127.0.0.1:50051"),
    "compliance-routing": ("ORDERSYNC_ROUTING_ADDR", "127.0.0.1:50052"),
    "fulfillment-dispatch": ("ORDERSYNC_ADMIN_ADDR", "127.0.0.1:50053"),
    "tracking-writeback": ("ORDERSYNC_WRITEBACK_ADDR", "127.0.0.1:50054"),
    "carrier-mapping": ("ORDERSYNC_MAPPING_ADDR", "127.0.0.1:50055"),
}
SERVICES = tuple(ADDRESSES)
TOKEN_VARIABLE = "ORDERSYNC_TOKEN"


@dataclass
class Connections:
    """One async gRPC channel per service, opened on first use; close() closes them all."""

    token_env: str = TOKEN_VARIABLE
    token_file: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    _channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    _metadata: tuple[tuple[str, str], ...] | None = None

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The call metadata presenting the operator's token (read once; ConfigError if none)."""
        if self._metadata is None:
            self._metadata = bearer(cli_token(self.token_env, self.token_file, self.environ))
        return self._metadata

    def address(self, service: str) -> str:
        variable, default = ADDRESSES[service]
        return self.environ.get(variable, default)

    def channel(self, service: str) -> grpc.aio.Channel:
        if service not in self._channels:
            tls = grpc_client_tls_from_env()
            address = self.address(service)
            self._channels[service] = (
                grpc.aio.secure_channel(address, channel_credentials(tls))
                if tls
                else grpc.aio.insecure_channel(address)
            )
        return self._channels[service]

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
