-- Connection health (ConnectionHealthService) per channel account:
-- the receipts of a tenant's window (attempts and failures), read without every receipt it
-- ever had;
CREATE INDEX webhook_receipts_by_tenant_time ON webhook_receipts (tenant_id, received_at);
-- and each account's latest revision taken in: the accounts are found by skipping through this
-- index (one probe per account) and each one's latest is its first entry.
CREATE INDEX webhook_receipts_taken_by_account ON webhook_receipts (tenant_id, account, received_at DESC)
    WHERE outcome IN ('accepted', 'invalid', 'not_imported');
