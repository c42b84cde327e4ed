-- The invite-list mirror's schedule (ORDERSYNC_DISPATCH_INVITE_LIST_SYNC_S > 0): one row per
-- directory account (a provider with a customer directory, e.g. VinSuite) whose member types are
-- mirrored into the invite lists of the channel accounts paired with it, leased by one replica at
-- a time, as product_sync_schedules are.
CREATE TABLE invite_list_schedules (
    tenant_id        text        NOT NULL,
    provider_account text        NOT NULL,
    provider         text        NOT NULL,
    lease_owner      text,                             -- the replica mirroring it now, or NULL
    lease_until      timestamptz,
    next_sync_at     timestamptz NOT NULL DEFAULT now(),
    failures         integer     NOT NULL DEFAULT 0,   -- passes failed in a row (drives the backoff)
    last_error       text        NOT NULL DEFAULT '',  -- why the last pass failed, with the account
    last_synced_at   timestamptz,
    PRIMARY KEY (tenant_id, provider_account)
);
CREATE INDEX invite_list_schedules_due ON invite_list_schedules (next_sync_at);
