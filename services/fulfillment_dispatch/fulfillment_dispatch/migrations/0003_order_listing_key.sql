-- The admin API pages through a tenant's orders on a key that never changes. Paging on
-- updated_at skipped orders: every sender pass and shipment update moves a row's updated_at,
-- so a row updated during a listing jumped over the page boundary and was never shown.
-- Identity values grow with each insert, so newest first is still the listing's order.
ALTER TABLE dispatches ADD COLUMN list_seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX dispatches_by_tenant_seq ON dispatches (tenant_id, list_seq DESC);
