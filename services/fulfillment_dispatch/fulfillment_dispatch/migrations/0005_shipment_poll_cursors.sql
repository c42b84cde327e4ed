-- Providers whose shipments are polled (Capability.POLL_SHIPMENTS): one watermark per
-- (tenant, provider account), leased by one replica at a time.

CREATE TABLE shipment_poll_cursors (
    tenant_id        text        NOT NULL,
    provider_account text        NOT NULL,
    provider         text        NOT NULL,
    cursor           text        NOT NULL DEFAULT '',  -- the provider's watermark; '' = from the start
    lease_owner      text,                             -- the replica polling it now, or NULL
    lease_until      timestamptz,
    next_poll_at     timestamptz NOT NULL DEFAULT now(),
    failures         integer     NOT NULL DEFAULT 0,   -- polls failed in a row (drives the backoff)
    last_error       text        NOT NULL DEFAULT '',
    last_polled_at   timestamptz,                      -- last page applied
    notices_applied  bigint      NOT NULL DEFAULT 0,   -- notices that moved a shipment forward
    PRIMARY KEY (tenant_id, provider_account)
);
CREATE INDEX shipment_poll_cursors_due ON shipment_poll_cursors (next_poll_at);
