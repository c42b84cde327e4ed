-- Each tenant's product map, for providers with SKUs of their own (ConnectorInfo.maps_products,
-- a warehouse): a channel SKU -> one component (an alternative code, quantity 1) or several (a
-- bundle), each a warehouse SKU with the quantity one unit of the channel SKU takes and the
-- name product sync creates it with. An unmapped channel SKU is sent as it is.
CREATE TABLE product_map_components (
    tenant_id   text        NOT NULL,
    channel_sku text        NOT NULL,
    position    integer     NOT NULL,   -- the component's place in the mapping, from 1
    sku         text        NOT NULL,   -- the warehouse's SKU
    quantity    integer     NOT NULL CHECK (quantity > 0),
    name        text        NOT NULL DEFAULT '',  -- the product's name, for product sync
    updated_by  text        NOT NULL DEFAULT '',  -- the caller who last wrote the mapping
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, channel_sku, position),
    UNIQUE (tenant_id, channel_sku, sku)
);

-- Periodic product sync (ORDERSYNC_DISPATCH_PRODUCT_SYNC_S > 0): one row per provider account
-- synced, leased by one replica at a time, as shipment_poll_cursors are.
CREATE TABLE product_sync_schedules (
    tenant_id        text        NOT NULL,
    provider_account text        NOT NULL,
    provider         text        NOT NULL,
    lease_owner      text,                             -- the replica syncing it now, or NULL
    lease_until      timestamptz,
    next_sync_at     timestamptz NOT NULL DEFAULT now(),
    failures         integer     NOT NULL DEFAULT 0,   -- syncs failed in a row (drives the backoff)
    last_error       text        NOT NULL DEFAULT '',  -- why the last sync failed, or which products it could not create
    last_synced_at   timestamptz,
    PRIMARY KEY (tenant_id, provider_account)
);
CREATE INDEX product_sync_schedules_due ON product_sync_schedules (next_sync_at);
