-- Tracking writeback's schema: per order, the shipment state wanted in the channel and what was
-- written; pending writes form a queue drained with leases.

CREATE TABLE writebacks (
    order_id          text        PRIMARY KEY,
    tenant_id         text        NOT NULL,
    channel           text        NOT NULL,
    external_id       text        NOT NULL,
    external_number   text        NOT NULL,
    target_status     text        NOT NULL,             -- shipped | delivered | cancelled
    written_status    text        NOT NULL DEFAULT '',  -- the last state the channel accepted
    shipment_proto    bytea       NOT NULL,
    status            text        NOT NULL,             -- pending | retry_wait | written | failed
    reason            text        NOT NULL DEFAULT '',
    attempts          integer     NOT NULL DEFAULT 0,
    customer_notified boolean     NOT NULL DEFAULT false,
    lease_until       timestamptz,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    traceparent       text        NOT NULL DEFAULT '',
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX writebacks_due ON writebacks (next_attempt_at) WHERE status IN ('pending', 'retry_wait');

CREATE TABLE writeback_activity (
    id        bigserial   PRIMARY KEY,
    order_id  text        NOT NULL,
    tenant_id text        NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    kind      text        NOT NULL,
    message   text        NOT NULL
);
CREATE INDEX writeback_activity_by_order ON writeback_activity (order_id, id);
