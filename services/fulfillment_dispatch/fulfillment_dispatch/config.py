"""Fulfillment dispatch settings from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from libs.platform.auth import CALLERS_VARIABLE, CallerDirectory, load_callers
from libs.platform.config import ConfigError, PlatformSettings, env_float, env_int, env_optional, env_str
from libs.platform.reconciliation import ReconcileSettings

PEER_VARIABLES = {
    "order-intake": "ORDER_INTAKE_ADDR",
    "compliance-routing": "COMPLIANCE_ROUTING_ADDR",
    "tracking-writeback": "TRACKING_WRITEBACK_ADDR",
}
PEERS_TOKEN_VARIABLE = "ORDERSYNC_PEERS_TOKEN"


@dataclass(frozen=True)
class DispatchSettings:
    """Platform settings, the webhook port, the carrier-mapping peer, the sender's tuning, the
    read APIs of the other services, and who may call dispatch's gRPC APIs."""

    platform: PlatformSettings
    http_port: int
    carrier_mapping_addr: str
    carrier_mapping_token: str
    lease_s: float
    claim_batch: int
    max_attempts: int
    provider_concurrency: int
    status_check_s: float  # first read-back of a sent order with no update; then doubling
    status_check_max_s: float  # the longest gap between read-backs of an open order
    batch_linger_s: float  # how long a burst for a batching provider may gather before it is sent
    shipment_poll_s: float  # between polls of a provider account's new shipments (POLL_SHIPMENTS)
    # The other services' gRPC read APIs, for the admin API's per-service view of an order.
    peer_addrs: dict[str, str]
    peers_token: str | None  # the bearer token dispatch presents to those read APIs
    callers: CallerDirectory
    store_page_size: int = 100  # orders per page of a pull-mode provider's export (Custom Store)
    product_sync_s: float = 0.0  # between periodic product syncs of a warehouse account; 0 = only on demand
    invite_list_sync_s: float = 3600.0  # between invite-list mirror passes of a directory account; 0 = only on demand
    # Customer look-ups (directory/): how long answers are kept (0: no cache), answers naming
    # nobody, how many per kind, and how long one directory call may take.
    directory_cache_ttl_s: float = 300.0
    directory_negative_ttl_s: float = 30.0
    directory_cache_size: int = 10_000
    directory_timeout_s: float = 5.0
    reconcile: ReconcileSettings = ReconcileSettings()

    @classmethod
    def from_env(cls) -> DispatchSettings:
        platform = PlatformSettings.from_env("fulfillment-dispatch", "fulfillment_dispatch", 50053)
        peer_addrs = {
            name: address
            for name, variable in PEER_VARIABLES.items()
            if (address := env_optional(variable)) is not None
        }
        peers_token = env_optional(PEERS_TOKEN_VARIABLE)
        if peer_addrs and peers_token is None:
            raise ConfigError(f"environment variable {PEERS_TOKEN_VARIABLE} is required when a peer address is set")
        return cls(
            platform=platform,
            http_port=env_int("ORDERSYNC_HTTP_PORT", 8081),
            carrier_mapping_addr=env_str("CARRIER_MAPPING_ADDR"),
            carrier_mapping_token=env_str("CARRIER_MAPPING_TOKEN"),
            lease_s=env_float("ORDERSYNC_DISPATCH_LEASE_S", 30.0),
            claim_batch=env_int("ORDERSYNC_DISPATCH_CLAIM_BATCH", 200),
            max_attempts=env_int("ORDERSYNC_DISPATCH_MAX_ATTEMPTS", 20),
            provider_concurrency=env_int("ORDERSYNC_DISPATCH_PROVIDER_CONCURRENCY", 16),
            status_check_s=env_float("ORDERSYNC_STATUS_CHECK_S", 900.0),
            status_check_max_s=env_float("ORDERSYNC_STATUS_CHECK_MAX_S", 21600.0),
            batch_linger_s=env_float("ORDERSYNC_DISPATCH_BATCH_LINGER_S", 2.0),
            shipment_poll_s=env_float("ORDERSYNC_DISPATCH_SHIPMENT_POLL_S", 300.0),
            peer_addrs=peer_addrs,
            peers_token=peers_token,
            callers=load_callers(env_str(CALLERS_VARIABLE), platform.service_name),
            store_page_size=env_int("ORDERSYNC_DISPATCH_STORE_PAGE_SIZE", 100),
            product_sync_s=env_float("ORDERSYNC_DISPATCH_PRODUCT_SYNC_S", 0.0),
            invite_list_sync_s=env_float("ORDERSYNC_DISPATCH_INVITE_LIST_SYNC_S", 3600.0),
            directory_cache_ttl_s=env_float("ORDERSYNC_DISPATCH_DIRECTORY_CACHE_TTL_S", 300.0),
            directory_negative_ttl_s=env_float("ORDERSYNC_DISPATCH_DIRECTORY_NEGATIVE_TTL_S", 30.0),
            directory_cache_size=env_int("ORDERSYNC_DISPATCH_DIRECTORY_CACHE_SIZE", 10_000),
            directory_timeout_s=env_float("ORDERSYNC_DISPATCH_DIRECTORY_TIMEOUT_S", 5.0),
            reconcile=ReconcileSettings.from_env("ORDERSYNC_DISPATCH"),
        )
