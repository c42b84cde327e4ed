-- Connection health (ConnectionHealthService) per provider account:
-- last_result_at is when the sender last recorded an attempt's result (updated_at also moves
-- with every shipment update, so it cannot tell when an order was sent); rows from before this
-- column keep NULL and count in no window.
-- unmapped_codes are the codes the latest failure found with no mapping: the SKUs a provider
-- does not know (UNKNOWN_SKU) or the channel shipping code with no provider service code
-- (UNMAPPED_CARRIER), kept as found so they are counted without reading reason text.
ALTER TABLE dispatches
    ADD COLUMN last_result_at timestamptz,
    ADD COLUMN unmapped_codes jsonb NOT NULL DEFAULT '[]';
-- The health query counts a tenant's results in its window: without this index it reads every
-- order the tenant ever sent.
CREATE INDEX dispatches_by_tenant_result ON dispatches (tenant_id, last_result_at) WHERE last_result_at IS NOT NULL;
