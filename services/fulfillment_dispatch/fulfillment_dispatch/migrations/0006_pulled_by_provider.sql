-- Providers that fetch orders from us (ShipStation's Custom Store, a route with mode
-- "custom_store"): such an order waits as 'awaiting_pull' until the provider's export takes it,
-- then it is 'sent' like a pushed one. `export_modified_at` is when the order last changed for
-- the provider (its LastModified): the provider pulls date windows on it, and again and again
-- (re-pulled windows return the same orders), so it is indexed per provider account.
ALTER TABLE dispatches ADD COLUMN export_modified_at timestamptz;
CREATE INDEX dispatches_export_window ON dispatches (tenant_id, provider, provider_account, export_modified_at, order_id)
    WHERE export_modified_at IS NOT NULL;
