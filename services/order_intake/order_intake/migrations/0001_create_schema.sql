-- Order intake's schema: every webhook received, every distinct order revision, and each order.

CREATE TABLE webhook_receipts (
    id           bigserial PRIMARY KEY,
    tenant_id    text        NOT NULL,
    channel      text        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    body         bytea       NOT NULL,
    outcome      text        NOT NULL,  -- accepted | duplicate | stale | invalid | ignored | malformed
    detail       text        NOT NULL DEFAULT '',
    order_id     text,
    trace_id     text        NOT NULL DEFAULT ''
);
CREATE INDEX webhook_receipts_problems ON webhook_receipts (tenant_id, received_at)
    WHERE outcome IN ('invalid', 'malformed');

CREATE TABLE orders (
    order_id        text        PRIMARY KEY,
    tenant_id       text        NOT NULL,
    channel         text        NOT NULL,
    external_id     text        NOT NULL,
    external_number text        NOT NULL,
    latest_revision text        NOT NULL,
    status          text        NOT NULL,  -- accepted | invalid
    status_reason   text        NOT NULL DEFAULT '',
    revision_count  integer     NOT NULL DEFAULT 1,
    order_proto     bytea       NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    trace_id        text        NOT NULL DEFAULT '',
    UNIQUE (tenant_id, channel, external_id)
);
CREATE INDEX orders_by_tenant ON orders (tenant_id, received_at DESC, order_id);

-- The deduplication key: a channel order's revision is taken once.
CREATE TABLE order_revisions (
    tenant_id   text        NOT NULL,
    channel     text        NOT NULL,
    external_id text        NOT NULL,
    revision    text        NOT NULL,
    receipt_id  bigint      NOT NULL REFERENCES webhook_receipts (id),
    PRIMARY KEY (tenant_id, channel, external_id, revision)
);
