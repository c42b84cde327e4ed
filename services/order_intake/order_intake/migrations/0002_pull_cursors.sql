-- Pulled channels: one cursor per (tenant, channel account), leased by one replica at a time,
-- and where each receipt came from.

ALTER TABLE webhook_receipts
    ADD COLUMN account text NOT NULL DEFAULT '',      -- the tenant's account name ('' before accounts)
    ADD COLUMN source  text NOT NULL DEFAULT 'push';  -- push (a webhook) | pull (a fetched record)

CREATE TABLE pull_cursors (
    tenant_id       text        NOT NULL,
    account         text        NOT NULL,
    connector       text        NOT NULL,
    cursor          text        NOT NULL DEFAULT '',  -- the channel's resume point; '' = from the start
    lease_owner     text,                             -- the replica polling it now, or NULL
    lease_until     timestamptz,
    next_poll_at    timestamptz NOT NULL DEFAULT now(),
    failures        integer     NOT NULL DEFAULT 0,   -- polls failed in a row (drives the backoff)
    last_error      text        NOT NULL DEFAULT '',
    last_polled_at  timestamptz,                      -- last page committed
    orders_pulled   bigint      NOT NULL DEFAULT 0,
    -- Committed orders the channel has not yet heard of: [{"order_id": ..., "ack_token": ...}].
    unacknowledged  jsonb       NOT NULL DEFAULT '[]',
    PRIMARY KEY (tenant_id, account)
);
CREATE INDEX pull_cursors_due ON pull_cursors (next_poll_at);
