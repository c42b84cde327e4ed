-- Fulfillment dispatch's schema: each routed order's state with its provider, and its activity log.

CREATE TABLE dispatches (
    order_id              text        PRIMARY KEY,
    tenant_id             text        NOT NULL,
    provider              text        NOT NULL,
    status                text        NOT NULL,  -- sending | retry_wait | sent | failed
    reason_code           text        NOT NULL DEFAULT '',
    reason                text        NOT NULL DEFAULT '',
    provider_order_number text        NOT NULL,
    attempts              integer     NOT NULL DEFAULT 0,
    lease_until           timestamptz,
    next_attempt_at       timestamptz NOT NULL DEFAULT now(),
    order_proto           bytea       NOT NULL,
    channel               text        NOT NULL,
    external_id           text        NOT NULL,
    external_number       text        NOT NULL,
    shipment_status       text        NOT NULL DEFAULT '',
    shipment_proto        bytea,
    traceparent           text        NOT NULL DEFAULT '',  -- the order's trace, continued by each attempt
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_order_number)
);
-- The sender's queue: orders still to send, or to retry when due.
CREATE INDEX dispatches_due ON dispatches (next_attempt_at) WHERE status IN ('sending', 'retry_wait');
CREATE INDEX dispatches_by_tenant_status ON dispatches (tenant_id, status, updated_at DESC);

-- Every attempt, every provider answer, every shipment change: what an operator reads.
CREATE TABLE dispatch_activity (
    id        bigserial   PRIMARY KEY,
    order_id  text        NOT NULL,
    tenant_id text        NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    kind      text        NOT NULL,
    message   text        NOT NULL
);
CREATE INDEX dispatch_activity_by_order ON dispatch_activity (order_id, id);

-- Provider webhooks as received (unsigned; accepted only on the tenant's secret URL).
CREATE TABLE provider_webhooks (
    id          bigserial   PRIMARY KEY,
    tenant_id   text        NOT NULL,
    provider    text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    body        bytea       NOT NULL,
    outcome     text        NOT NULL,  -- applied | unchanged | unknown_order | ignored | malformed
    detail      text        NOT NULL DEFAULT ''
);
