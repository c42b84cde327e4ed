-- When the current wanted state arrived: connection health reports the oldest shipment not yet
-- written by it (updated_at moves with every claim and re-check, so it cannot tell). Rows from
-- before this column take their last change.
ALTER TABLE writebacks ADD COLUMN wanted_at timestamptz;
UPDATE writebacks SET wanted_at = updated_at;
ALTER TABLE writebacks ALTER COLUMN wanted_at SET DEFAULT now(), ALTER COLUMN wanted_at SET NOT NULL;
-- ListWritebacks pages through a tenant's records latest change first on (updated_at, order_id),
-- and connection health counts the tenant's writes that ended in its window: both read this
-- index instead of every writeback of every tenant.
CREATE INDEX writebacks_by_tenant_change ON writebacks (tenant_id, updated_at DESC, order_id DESC);
